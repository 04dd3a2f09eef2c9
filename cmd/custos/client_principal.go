package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// The Custos directory verbs: principal (service principals and users),
// group, access (just-in-time requests), login and logout.

const (
	apiVersionDirectory = "2024-01-01"
	directoryPath       = "/providers/Custos.Directory"
)

func addIdentityCommands(root *cobra.Command) {
	root.AddCommand(newPrincipalCmd(), newGroupCmd(), newAccessCmd(), newLoginCmd(), newLogoutCmd())
}

func newObjectID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// dirCall runs one directory request and prints the answer (indented JSON,
// or a table via table when not -o json).
func dirCall(cmd *cobra.Command, f *clientFlags, method, path string, body any, table func([]byte) (*cli.Table, error)) error {
	data, _, err := armDo(cmd, f, method, func(*mgmtClient) (string, error) { return path, nil }, apiVersionDirectory, body)
	if err != nil {
		return err
	}
	if table != nil && !f.json() {
		t, err := table(data)
		if err != nil {
			return err
		}
		return t.Write(cmd.OutOrStdout())
	}
	return writeIndented(cmd, data)
}

type dirList struct {
	Value []struct {
		Name       string          `json:"name"`
		Properties json.RawMessage `json:"properties"`
	} `json:"value"`
}

func newPrincipalCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "principal",
		Aliases: []string{"principals"},
		Short:   "Manage service principals and users of the Custos directory",
		Long: `Service principals (applications with client secret or certificate credentials) and users
(local password and TOTP, or bound to an external OIDC issuer) of the caller's tenant, through
the Custos.Directory API. Reading needs Reader at "/"; changing needs Owner or User Access
Administrator at "/".`,
	}
	f.register(cmd)
	var userUPN, passwordFile, extIssuer, extSubject string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a service principal (prints its first client secret once), or a user with --user",
		Example: `  custos principal create ci-uploader
  custos principal create "Alice" --user alice@example.test --password-file ./alice.pw`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if userUPN == "" {
				return dirCall(cmd, f, http.MethodPost, directoryPath+"/servicePrincipals", map[string]string{"displayName": args[0]}, nil)
			}
			id, err := newObjectID()
			if err != nil {
				return err
			}
			props := map[string]any{"userPrincipalName": userUPN, "displayName": args[0]}
			if passwordFile != "" {
				pw, err := os.ReadFile(passwordFile)
				if err != nil {
					return err
				}
				props["password"] = strings.TrimRight(string(pw), "\r\n")
			}
			if extIssuer != "" {
				props["externalIssuer"], props["externalSubject"] = extIssuer, extSubject
			}
			return dirCall(cmd, f, http.MethodPut, directoryPath+"/users/"+id, map[string]any{"properties": props}, nil)
		},
	}
	create.Flags().StringVar(&userUPN, "user", "", "create a user with this userPrincipalName (sign-in name)")
	create.Flags().StringVar(&passwordFile, "password-file", "", "file holding the user's initial password (12 to 256 characters)")
	create.Flags().StringVar(&extIssuer, "external-issuer", "", "bind the user to this external OIDC issuer (with --external-subject)")
	create.Flags().StringVar(&extSubject, "external-subject", "", "the user's subject (oid or sub) at the external issuer")

	var users bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List service principals and managed identities (--users: users)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if users {
				return dirCall(cmd, f, http.MethodGet, directoryPath+"/users", nil, func(data []byte) (*cli.Table, error) {
					var l dirList
					if err := json.Unmarshal(data, &l); err != nil {
						return nil, err
					}
					t := &cli.Table{Columns: []string{"OBJECT ID", "USER PRINCIPAL NAME", "DISPLAY NAME", "ENABLED", "TOTP"}}
					for _, v := range l.Value {
						var p struct {
							UPN         string `json:"userPrincipalName"`
							DisplayName string `json:"displayName"`
							Enabled     bool   `json:"accountEnabled"`
							TOTP        bool   `json:"totpEnabled"`
						}
						_ = json.Unmarshal(v.Properties, &p)
						t.Rows = append(t.Rows, []string{v.Name, p.UPN, p.DisplayName, fmt.Sprint(p.Enabled), fmt.Sprint(p.TOTP)})
					}
					return t, nil
				})
			}
			return dirCall(cmd, f, http.MethodGet, directoryPath+"/servicePrincipals", nil, func(data []byte) (*cli.Table, error) {
				var l dirList
				if err := json.Unmarshal(data, &l); err != nil {
					return nil, err
				}
				t := &cli.Table{Columns: []string{"OBJECT ID", "APP ID", "DISPLAY NAME", "TYPE", "SECRETS", "CERTIFICATES"}}
				for _, v := range l.Value {
					var p struct {
						AppID       string `json:"appId"`
						DisplayName string `json:"displayName"`
						Type        string `json:"principalType"`
						Secrets     []any  `json:"passwordCredentials"`
						Keys        []any  `json:"keyCredentials"`
					}
					_ = json.Unmarshal(v.Properties, &p)
					t.Rows = append(t.Rows, []string{v.Name, p.AppID, p.DisplayName, p.Type, fmt.Sprint(len(p.Secrets)), fmt.Sprint(len(p.Keys))})
				}
				return t, nil
			})
		},
	}
	list.Flags().BoolVar(&users, "users", false, "list users instead")

	kindPath := func(id string, user bool) string {
		if user {
			return directoryPath + "/users/" + id
		}
		return directoryPath + "/servicePrincipals/" + id
	}
	var showUser bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a service principal (object or app ID) or, with --user, a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return dirCall(cmd, f, http.MethodGet, kindPath(args[0], showUser), nil, nil)
		},
	}
	show.Flags().BoolVar(&showUser, "user", false, "ID is a user's object ID")
	var delUser, yes bool
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a service principal or, with --user, a user (with its role assignments and memberships)",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			return confirm(cmd, yes, "Deleting principal "+args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return dirCall(cmd, f, http.MethodDelete, kindPath(args[0], delUser), nil, nil)
		},
	}
	del.Flags().BoolVar(&delUser, "user", false, "ID is a user's object ID")
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")

	credential := &cobra.Command{Use: "credential", Aliases: []string{"credentials"}, Short: "Add or remove client secrets and certificates"}
	var certFile, certName string
	var secret bool
	add := &cobra.Command{
		Use:   "add ID (--cert FILE | --secret)",
		Short: "Register a certificate's public key (PEM or DER file) or create a client secret (printed once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case secret == (certFile != ""):
				return fmt.Errorf("pass exactly one of --cert FILE and --secret")
			case secret:
				return dirCall(cmd, f, http.MethodPost, kindPath(args[0], false)+"/addPassword", map[string]any{}, nil)
			}
			data, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			cert := string(data)
			if !strings.Contains(cert, "-----BEGIN") {
				cert = base64.StdEncoding.EncodeToString(data)
			}
			return dirCall(cmd, f, http.MethodPost, kindPath(args[0], false)+"/addKey", map[string]string{"certificate": cert, "displayName": certName}, nil)
		},
	}
	add.Flags().StringVar(&certFile, "cert", "", "certificate file (PEM or DER); only its public part is sent")
	add.Flags().StringVar(&certName, "display-name", "", "a name for the certificate credential")
	add.Flags().BoolVar(&secret, "secret", false, "create a new client secret")
	var keyID string
	var isCert bool
	remove := &cobra.Command{
		Use:   "remove ID --key-id KEY [--cert]",
		Short: "Remove a client secret (or, with --cert, a certificate) by key ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := "/removePassword"
			if isCert {
				op = "/removeKey"
			}
			return dirCall(cmd, f, http.MethodPost, kindPath(args[0], false)+op, map[string]string{"keyId": keyID}, nil)
		},
	}
	remove.Flags().StringVar(&keyID, "key-id", "", "key ID of the credential")
	remove.Flags().BoolVar(&isCert, "cert", false, "the key ID is a certificate's")
	credential.AddCommand(add, remove)

	totp := &cobra.Command{Use: "totp", Short: "Enroll and confirm a user's TOTP authenticator"}
	totp.AddCommand(&cobra.Command{
		Use:   "enroll USER_OBJECT_ID",
		Short: "Create a TOTP secret; prints the otpauth:// URI to load into an authenticator app",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return dirCall(cmd, f, http.MethodPost, kindPath(args[0], true)+"/enrollTotp", map[string]any{}, nil)
		},
	}, &cobra.Command{
		Use:   "confirm USER_OBJECT_ID CODE",
		Short: "Confirm the enrolment with a current code; from then on sign-in requires a code",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return dirCall(cmd, f, http.MethodPost, kindPath(args[0], true)+"/confirmTotp", map[string]string{"code": args[1]}, nil)
		},
	})
	var pwFile string
	setPassword := &cobra.Command{
		Use:   "set-password USER_OBJECT_ID --password-file FILE",
		Short: "Set a user's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := os.ReadFile(pwFile)
			if err != nil {
				return err
			}
			return dirCall(cmd, f, http.MethodPost, kindPath(args[0], true)+"/setPassword", map[string]string{"password": strings.TrimRight(string(pw), "\r\n")}, nil)
		},
	}
	setPassword.Flags().StringVar(&pwFile, "password-file", "", "file holding the new password")
	cmd.AddCommand(create, list, show, del, credential, totp, setPassword)
	return cmd
}
