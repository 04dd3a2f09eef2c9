package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"custos/internal/identity"
)

// MachineResourceID returns the ARM ID of a monitored machine.
func MachineResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypeMachine + "/" + name
}

// ParseMachineResourceID splits a machine resource ID, comparing the fixed
// segments case-insensitively.
func ParseMachineResourceID(id string) (sub, rg, name string, ok bool) {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	if len(p) != 9 || p[0] != "" ||
		!strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.HybridCompute") ||
		!strings.EqualFold(p[7], "machines") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", false
	}
	return p[2], p[4], p[8], true
}

// Machine is a Microsoft.HybridCompute/machines resource: a host enrolled
// with a one-time token, with a system-assigned managed identity bound to a
// key the host generated.
type Machine struct {
	SubscriptionID  string
	ResourceGroup   string
	Name            string
	Location        string
	Tags            map[string]string
	TenantID        string
	PrincipalID     string // the system-assigned identity's object ID
	ClientID        string // its app ID (client_id)
	IdentityEnabled bool
	Hostname        string
	OSType          string
	OSName          string
	OSVersion       string
	AgentVersion    string
	ETag            string
	Audit           Audit
}

// ID returns the machine's ARM resource ID.
func (m *Machine) ID() string { return MachineResourceID(m.SubscriptionID, m.ResourceGroup, m.Name) }

// EnrollmentToken describes a stored enrollment token (never the token).
type EnrollmentToken struct {
	ID             string // GUID
	SubscriptionID string
	ResourceGroup  string
	Expires        time.Time
	Created        time.Time
}

// CreateEnrollmentToken stores the hash of a new one-time enrollment token
// for resource group rg, valid until expires.
func (c *DB) CreateEnrollmentToken(ctx context.Context, sub, rg string, hash []byte, expires time.Time, by Actor) (EnrollmentToken, error) {
	return machineEnrollment.createToken(ctx, c, sub, rg, hash, expires, by)
}

// EnrollMachine implements identity.Store: in one transaction it consumes
// the token, creates the machine's managed identity with its key credential,
// the machine resource, and a Reader role assignment of the identity on its
// own machine (so that it may read its resource and its configuration).
func (c *DB) EnrollMachine(ctx context.Context, e identity.MachineEnrollment) (identity.EnrolledMachine, error) {
	if !identity.ValidMachineName(e.Name) || e.ObjectID == "" || e.AppID == "" || len(e.TokenHash) == 0 {
		return identity.EnrolledMachine{}, fmt.Errorf("%w: enrollment needs a valid name, identity IDs and a token hash", identity.ErrInvalidArgument)
	}
	raName, err := c.newGUID()
	if err != nil {
		return identity.EnrolledMachine{}, err
	}
	etag, err := c.newETag()
	if err != nil {
		return identity.EnrolledMachine{}, err
	}
	var out identity.EnrolledMachine
	err = c.inTx(ctx, func(r run) error {
		now := c.nowUTC()
		en := machineEnrollment.withToken(e.TokenHash)
		rgKey, g, tenant, err := en.begin(ctx, r, now)
		if err != nil {
			return err
		}
		m := Machine{SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, Name: e.Name, Location: g.Location,
			TenantID: strings.ToLower(tenant), PrincipalID: strings.ToLower(e.ObjectID), ClientID: strings.ToLower(e.AppID)}
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM machines WHERE machine_key = ?`, key(m.ID())).Scan(&n); err != nil {
			return fmt.Errorf("enroll machine: %w", err)
		}
		if n > 0 {
			return conflictIdentity("The machine '%s' already exists.", m.ID())
		}
		if err := en.createIdentity(ctx, r, c, m.TenantID, m.PrincipalID, m.ClientID, m.Name, m.ID(), e.Key); err != nil {
			return err
		}
		by := Actor{ID: m.PrincipalID, Type: "ManagedIdentity"}
		_, err = r.exec(ctx, `INSERT INTO machines (machine_key, rg_key, sub_key, name, location, tags, tenant_id, principal_id,
			client_id, hostname, os_type, os_name, os_version, agent_version, etag, created_at, created_by, created_by_type,
			modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key(m.ID()), rgKey, key(m.SubscriptionID), m.Name, m.Location, m.TenantID, m.PrincipalID, m.ClientID, e.Hostname,
			e.OSType, e.OSName, e.OSVersion, e.AgentVersion, etag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		if err != nil {
			return fmt.Errorf("enroll machine: %w", err)
		}
		if err := en.finish(ctx, r, now, m.ID(), raName, m.PrincipalID); err != nil {
			return err
		}
		out = identity.EnrolledMachine{ResourceID: m.ID(), Name: m.Name, Location: m.Location, TenantID: m.TenantID,
			ObjectID: m.PrincipalID, AppID: m.ClientID}
		return nil
	})
	if err != nil {
		return identity.EnrolledMachine{}, err
	}
	return out, nil
}

const machineColumns = `s.subscription_id, g.name, m.name, m.location, m.tags, m.tenant_id, m.principal_id, m.client_id,
	COALESCE(p.enabled, 0), m.hostname, m.os_type, m.os_name, m.os_version, m.agent_version, m.etag,
	m.created_at, m.created_by, m.created_by_type, m.modified_at, m.modified_by, m.modified_by_type`

const machineFrom = ` FROM machines m JOIN resource_groups g ON g.rg_key = m.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key
	LEFT JOIN service_principals p ON p.object_id = m.principal_id `

func scanMachine(sc interface{ Scan(...any) error }) (Machine, error) {
	var m Machine
	var tags, created, modified string
	var enabled int
	if err := sc.Scan(&m.SubscriptionID, &m.ResourceGroup, &m.Name, &m.Location, &tags, &m.TenantID, &m.PrincipalID, &m.ClientID,
		&enabled, &m.Hostname, &m.OSType, &m.OSName, &m.OSVersion, &m.AgentVersion, &m.ETag,
		&created, &m.Audit.CreatedBy, &m.Audit.CreatedByType, &modified, &m.Audit.ModifiedBy, &m.Audit.ModifiedByType); err != nil {
		return Machine{}, err
	}
	m.IdentityEnabled = enabled != 0
	var err error
	if m.Tags, err = unmarshalTags(tags); err != nil {
		return Machine{}, err
	}
	if m.Audit.CreatedAt, err = parseTime(created); err != nil {
		return Machine{}, err
	}
	if m.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return Machine{}, err
	}
	return m, nil
}

func getMachine(ctx context.Context, r run, sub, rg, name string) (Machine, error) {
	m, err := scanMachine(r.row(ctx, `SELECT `+machineColumns+machineFrom+`WHERE m.machine_key = ?`, key(MachineResourceID(sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return Machine{}, errResourceNotFound(TypeMachine+"/"+name, rg)
	}
	if err != nil {
		return Machine{}, fmt.Errorf("get machine: %w", err)
	}
	return m, nil
}

// Machine returns a machine by subscription, resource group and name.
func (c *DB) Machine(ctx context.Context, sub, rg, name string) (Machine, error) {
	r := c.r()
	m, err := getMachine(ctx, r, sub, rg, name)
	if errors.Is(err, ErrNotFound) {
		if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
			return Machine{}, perr
		}
	}
	return m, err
}

// Machines lists the machines of a subscription, or of one of its resource
// groups when rg is not empty.
func (c *DB) Machines(ctx context.Context, sub, rg string) ([]Machine, error) {
	r := c.r()
	where, arg, err := subOrRGFilter(ctx, r, "m", sub, rg)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, r, "list machines", scanMachine, `SELECT `+machineColumns+machineFrom+`WHERE `+where+` ORDER BY m.machine_key`, arg)
}

// MachineUpdate is a PATCH of a machine: nil fields stay unchanged.
type MachineUpdate struct {
	Tags            *map[string]string
	IdentityEnabled *bool
}

// UpdateMachine changes a machine's tags and whether its identity may get
// and use tokens.
func (c *DB) UpdateMachine(ctx context.Context, sub, rg, name string, u MachineUpdate, pre Precondition, by Actor) (Machine, error) {
	var tags string
	if u.Tags != nil {
		if err := ValidateTags(*u.Tags); err != nil {
			return Machine{}, err
		}
		var err error
		if tags, err = marshalTags(*u.Tags); err != nil {
			return Machine{}, err
		}
	}
	etag, err := c.newETag()
	if err != nil {
		return Machine{}, err
	}
	var out Machine
	err = c.inTx(ctx, func(r run) error {
		if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
			return err
		}
		m, err := getMachine(ctx, r, sub, rg, name)
		if err != nil {
			return err
		}
		if err := pre.check(true, m.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		if u.Tags != nil {
			if _, err := r.exec(ctx, `UPDATE machines SET tags = ? WHERE machine_key = ?`, tags, key(m.ID())); err != nil {
				return fmt.Errorf("update machine: %w", err)
			}
		}
		if u.IdentityEnabled != nil {
			if _, err := r.exec(ctx, `UPDATE service_principals SET enabled = ? WHERE object_id = ?`,
				boolInt(*u.IdentityEnabled), m.PrincipalID); err != nil {
				return fmt.Errorf("update machine: %w", err)
			}
		}
		if _, err := r.exec(ctx, `UPDATE machines SET etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE machine_key = ?`,
			etag, fmtTime(now), by.ID, by.Type, key(m.ID())); err != nil {
			return fmt.Errorf("update machine: %w", err)
		}
		out, err = getMachine(ctx, r, sub, rg, name)
		return err
	})
	return out, err
}

// DeleteMachine deletes a machine, its associations, and its managed
// identity with the identity's credentials and role assignments, so that the
// identity's tokens stop working. It reports false when there was nothing to
// delete.
func (c *DB) DeleteMachine(ctx context.Context, sub, rg, name string, pre Precondition) (bool, error) {
	return c.deleteGuarded(ctx, pre, func(r run) (string, error) {
		m, err := getMachine(ctx, r, sub, rg, name)
		return m.ETag, err
	}, func(r run) error {
		if _, err := r.exec(ctx, `DELETE FROM machines WHERE machine_key = ?`, key(MachineResourceID(sub, rg, name))); err != nil {
			return fmt.Errorf("delete machine: %w", err)
		}
		return nil
	})
}
