package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ParseDataCollectionRuleResourceID splits a data collection rule resource
// ID, comparing the fixed segments case-insensitively.
func ParseDataCollectionRuleResourceID(id string) (sub, rg, name string, ok bool) {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	if len(p) != 9 || p[0] != "" ||
		!strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.Insights") ||
		!strings.EqualFold(p[7], "dataCollectionRules") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", false
	}
	return p[2], p[4], p[8], true
}

// DCRAssociation is a Microsoft.Insights/dataCollectionRuleAssociations
// extension resource: it links a data collection rule to a machine, whose
// agent then applies the rule.
type DCRAssociation struct {
	// ResourceID is the machine the association extends.
	ResourceID string
	Name       string
	// DataCollectionRuleID is the rule's resource ID, in the casing stored.
	DataCollectionRuleID string
	Description          string
	ETag                 string
	Audit                Audit
}

// ID returns the association's ARM ID: {machineId}/providers/Microsoft.Insights/dataCollectionRuleAssociations/{name}.
func (a *DCRAssociation) ID() string {
	return a.ResourceID + "/providers/" + TypeDCRAssociation + "/" + a.Name
}

var assocNameRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,63}$`)

// ValidateAssociationName checks an association name.
func ValidateAssociationName(name string) error {
	if !assocNameRE.MatchString(name) {
		return Invalid("InvalidResourceName", "associationName",
			"The association name '%s' is invalid. It must be 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit.",
			truncate(name, 100))
	}
	return nil
}

// requireMachineByID resolves the machine an association extends.
func requireMachineByID(ctx context.Context, r run, machineID string) (Machine, error) {
	sub, rg, name, ok := ParseMachineResourceID(machineID)
	if !ok {
		return Machine{}, Invalid("InvalidResourceId", "resourceUri",
			"The resource '%s' cannot have data collection rule associations: only machines (%s) can.", truncate(machineID, 300), TypeMachine)
	}
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return Machine{}, err
	}
	return getMachine(ctx, r, sub, rg, name)
}

// PutDCRAssociation creates or replaces an association. The machine and the
// data collection rule must exist (in the same tenant). It reports whether
// the association was created.
func (c *DB) PutDCRAssociation(ctx context.Context, a DCRAssociation, pre Precondition, by Actor) (DCRAssociation, bool, error) {
	if err := ValidateAssociationName(a.Name); err != nil {
		return DCRAssociation{}, false, err
	}
	if len(a.Description) > 1024 {
		return DCRAssociation{}, false, Invalid("InvalidPayload", "properties.description", "The description exceeds 1024 characters.")
	}
	dsub, drg, dname, ok := ParseDataCollectionRuleResourceID(a.DataCollectionRuleID)
	if !ok {
		return DCRAssociation{}, false, Invalid("InvalidPayload", "properties.dataCollectionRuleId",
			"The property 'dataCollectionRuleId' must be a data collection rule resource ID (/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Insights/dataCollectionRules/{name}); got '%s'.",
			truncate(a.DataCollectionRuleID, 300))
	}
	etag, err := c.newETag()
	if err != nil {
		return DCRAssociation{}, false, err
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		m, err := requireMachineByID(ctx, r, a.ResourceID)
		if err != nil {
			return err
		}
		d, err := getDataCollectionRule(ctx, r, dsub, drg, dname)
		if errors.Is(err, ErrNotFound) {
			return Invalid("InvalidPayload", "properties.dataCollectionRuleId", "The data collection rule '%s' does not exist.", truncate(a.DataCollectionRuleID, 300))
		}
		if err != nil {
			return err
		}
		dsubRow, err := getSubscription(ctx, r, d.SubscriptionID)
		if err != nil {
			return err
		}
		if !strings.EqualFold(dsubRow.TenantID, m.TenantID) {
			return Invalid("InvalidPayload", "properties.dataCollectionRuleId", "The data collection rule is in another tenant than the machine.")
		}
		a.ResourceID, a.DataCollectionRuleID = m.ID(), d.ID()
		old, err := getDCRAssociation(ctx, r, a.ResourceID, a.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		a.ETag = etag
		a.Audit.ModifiedAt, a.Audit.ModifiedBy, a.Audit.ModifiedByType = now, by.ID, by.Type
		if exists {
			a.Name = old.Name
			a.Audit.CreatedAt, a.Audit.CreatedBy, a.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			_, err = r.exec(ctx, `UPDATE dcr_associations SET dcr_id = ?, dcr_key = ?, description = ?, etag = ?, modified_at = ?,
				modified_by = ?, modified_by_type = ? WHERE assoc_key = ?`, a.DataCollectionRuleID, key(a.DataCollectionRuleID),
				a.Description, a.ETag, fmtTime(now), by.ID, by.Type, key(a.ID()))
		} else {
			created = true
			a.Audit.CreatedAt, a.Audit.CreatedBy, a.Audit.CreatedByType = now, by.ID, by.Type
			_, err = r.exec(ctx, `INSERT INTO dcr_associations (assoc_key, resource_key, name, dcr_id, dcr_key, description, etag,
				created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, key(a.ID()), key(a.ResourceID), a.Name, a.DataCollectionRuleID,
				key(a.DataCollectionRuleID), a.Description, a.ETag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put data collection rule association: %w", err)
		}
		return nil
	})
	if err != nil {
		return DCRAssociation{}, false, err
	}
	return a, created, nil
}

const assocColumns = `m.machine_key, m.name, s.subscription_id, g.name, a.name, a.dcr_id, a.description, a.etag,
	a.created_at, a.created_by, a.created_by_type, a.modified_at, a.modified_by, a.modified_by_type`

const assocFrom = ` FROM dcr_associations a JOIN machines m ON m.machine_key = a.resource_key
	JOIN resource_groups g ON g.rg_key = m.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanDCRAssociation(sc interface{ Scan(...any) error }) (DCRAssociation, error) {
	var a DCRAssociation
	var mkey, mname, sub, rg, created, modified string
	if err := sc.Scan(&mkey, &mname, &sub, &rg, &a.Name, &a.DataCollectionRuleID, &a.Description, &a.ETag,
		&created, &a.Audit.CreatedBy, &a.Audit.CreatedByType, &modified, &a.Audit.ModifiedBy, &a.Audit.ModifiedByType); err != nil {
		return DCRAssociation{}, err
	}
	a.ResourceID = MachineResourceID(sub, rg, mname)
	var err error
	if a.Audit.CreatedAt, err = parseTime(created); err != nil {
		return DCRAssociation{}, err
	}
	if a.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return DCRAssociation{}, err
	}
	return a, nil
}

func getDCRAssociation(ctx context.Context, r run, resourceID, name string) (DCRAssociation, error) {
	a, err := scanDCRAssociation(r.row(ctx, `SELECT `+assocColumns+assocFrom+`WHERE a.assoc_key = ?`,
		key(resourceID+"/providers/"+TypeDCRAssociation+"/"+name)))
	if errors.Is(err, sql.ErrNoRows) {
		return DCRAssociation{}, notFound("ResourceNotFound", "The data collection rule association '%s' was not found on resource '%s'.",
			truncate(name, 100), truncate(resourceID, 300))
	}
	if err != nil {
		return DCRAssociation{}, fmt.Errorf("get data collection rule association: %w", err)
	}
	return a, nil
}

func listDCRAssociations(ctx context.Context, r run, where string, args ...any) ([]DCRAssociation, error) {
	return queryAll(ctx, r, "list data collection rule associations", scanDCRAssociation, `SELECT `+assocColumns+assocFrom+`WHERE `+where+` ORDER BY a.assoc_key`, args...)
}

// DCRAssociation returns one association of a machine.
func (c *DB) DCRAssociation(ctx context.Context, machineID, name string) (DCRAssociation, error) {
	r := c.r()
	m, err := requireMachineByID(ctx, r, machineID)
	if err != nil {
		return DCRAssociation{}, err
	}
	return getDCRAssociation(ctx, r, m.ID(), name)
}

// DCRAssociationsForResource lists the associations of a machine.
func (c *DB) DCRAssociationsForResource(ctx context.Context, machineID string) ([]DCRAssociation, error) {
	r := c.r()
	m, err := requireMachineByID(ctx, r, machineID)
	if err != nil {
		return nil, err
	}
	return listDCRAssociations(ctx, r, `a.resource_key = ?`, key(m.ID()))
}

// DCRAssociationsForRule lists the associations that name a data collection
// rule (which must exist).
func (c *DB) DCRAssociationsForRule(ctx context.Context, sub, rg, name string) ([]DCRAssociation, error) {
	r := c.r()
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return nil, err
	}
	d, err := getDataCollectionRule(ctx, r, sub, rg, name)
	if err != nil {
		return nil, err
	}
	return listDCRAssociations(ctx, r, `a.dcr_key = ?`, key(d.ID()))
}

// DeleteDCRAssociation deletes an association. It reports false when there
// was nothing to delete.
func (c *DB) DeleteDCRAssociation(ctx context.Context, machineID, name string, pre Precondition) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		m, err := requireMachineByID(ctx, r, machineID)
		if errors.Is(err, ErrNotFound) && pre.IfMatch == "" {
			return nil
		}
		if err != nil {
			return err
		}
		old, err := getDCRAssociation(ctx, r, m.ID(), name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM dcr_associations WHERE assoc_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete data collection rule association: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// MachineConfiguration is what a machine's agent is told to apply: the data
// collection rules associated with it (missing rules are skipped).
type MachineConfiguration struct {
	Machine             Machine
	Associations        []DCRAssociation
	DataCollectionRules []DataCollectionRule
}

// MachineConfigurationFor returns a machine with its associations and the
// rules they name. It reads without taking the write lock (agents poll it).
func (c *DB) MachineConfigurationFor(ctx context.Context, sub, rg, name string) (MachineConfiguration, error) {
	var out MachineConfiguration
	err := func(r run) error {
		if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
			return err
		}
		m, err := getMachine(ctx, r, sub, rg, name)
		if err != nil {
			return err
		}
		as, err := listDCRAssociations(ctx, r, `a.resource_key = ?`, key(m.ID()))
		if err != nil {
			return err
		}
		ids := make([]string, len(as))
		for i := range as {
			ids[i] = as[i].DataCollectionRuleID
		}
		rules, err := associatedRules(ctx, r, ids)
		if err != nil {
			return err
		}
		out = MachineConfiguration{Machine: m, Associations: as, DataCollectionRules: rules}
		return nil
	}(c.r())
	return out, err
}
