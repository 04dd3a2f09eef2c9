// Package enroll is the machine side of Custos managed-identity enrollment,
// and the wire contract the server's enrollment endpoint implements.
//
// A machine enrolls once: Enroll generates an ECDSA P-256 key pair locally
// (the private key is written 0600 and never sent), presents a one-time
// enrollment token and the public key to POST {endpoint}/enroll, and stores
// the answer (the machine's resource ID and its system-assigned managed
// identity) next to the key. Afterwards TokenSource obtains access tokens
// with client assertions signed by the machine key (RFC 7523), and
// FetchConfiguration polls the data collection rules associated with the
// machine, with ETags.
//
// enroll is imported by custos-agent, so it must import only the standard
// library and the Azure SDK's azcore (never store, engine, kql, catalog or
// server). The server's identity package imports it for the wire types.
package enroll
