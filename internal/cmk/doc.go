// Package cmk turns the customer-managed key of a Log Analytics cluster
// (catalog.Cluster: keyVaultProperties plus Custos's provider extension)
// into a crypt.KeyProvider, seals the provider's credential with the
// platform key, and applies a cluster's key to the workspaces linked to it
// through the store (SetWorkspaceEncryption). It imports catalog, store and
// crypt, and nothing that serves HTTP; arm and server call it.
package cmk
