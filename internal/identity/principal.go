package identity

// Token audiences that Custos issues tokens for. Each API accepts only tokens
// whose aud is its own audience (compared without a trailing slash).
const (
	AudienceManagement = "https://management.azure.com" // ARM-shaped control plane
	AudienceIngestion  = "https://monitor.azure.com"    // Logs Ingestion API
	AudienceQuery      = "https://api.loganalytics.io"  // Log Analytics Query API
)

// PrincipalKind says what kind of security principal a Principal is.
type PrincipalKind string

// Principal kinds, spelled as Azure's principalType.
const (
	KindUser             PrincipalKind = "User"
	KindGroup            PrincipalKind = "Group"
	KindServicePrincipal PrincipalKind = "ServicePrincipal"
	KindManagedIdentity  PrincipalKind = "ManagedIdentity"
)

// Principal is the authenticated caller of one request, taken from a validated
// token. It is a value: safe to copy and share.
type Principal struct {
	TenantID string        // tid
	ObjectID string        // oid: the principal's object ID, which role assignments name
	AppID    string        // appid / azp: the client ID that obtained the token
	Kind     PrincipalKind // kind of principal
	Name     string        // display name, for logs and the activity log
	Audience string        // aud of the token that authenticated the request
	TokenID  string        // jti, for audit records
	GroupIDs []string      // object IDs of the groups the principal belongs to (transitively)
}
