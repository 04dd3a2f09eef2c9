package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Names of the resources that the first start creates.
const (
	DefaultName     = "default"
	DefaultLocation = "local"
)

// BootstrapOptions configures Bootstrap. Zero fields mean the defaults.
type BootstrapOptions struct {
	// TenantID is the tenant to create on first start; "" means a random GUID.
	// Ignored once a default tenant exists.
	TenantID string
	// TenantName is the tenant's display name; "" means "Custos".
	TenantName string
	// SubscriptionID is the default subscription's GUID on first start; ""
	// means a random GUID. Ignored once a default subscription exists.
	SubscriptionID string
	// Location of the default resource group and workspace; "" means "local".
	Location string
	// Actor is recorded as the creator of the default workspace.
	Actor Actor
}

// Bootstrap is what the first start created (or found).
type Bootstrap struct {
	Tenant        Tenant
	Subscription  Subscription
	ResourceGroup ResourceGroup
	Workspace     Workspace
	// Created lists what this call created, e.g. ["tenant", "workspace"].
	Created []string
}

// Bootstrap makes sure the default tenant, the "default" subscription and
// resource group, and the "default" workspace (with its standard tables)
// exist. It is idempotent: existing resources are returned unchanged, and a
// resource the user deleted is created again.
func (c *DB) Bootstrap(ctx context.Context, opts BootstrapOptions) (Bootstrap, error) {
	if opts.TenantName == "" {
		opts.TenantName = "Custos"
	}
	if opts.Location == "" {
		opts.Location = DefaultLocation
	}
	if opts.Actor.ID == "" {
		opts.Actor = Actor{ID: "custos", Type: "Application"}
	}
	var b Bootstrap

	tenantID, err := getSetting(ctx, c.r(), settingDefaultTenant)
	if err != nil {
		return b, err
	}
	if tenantID != "" {
		if b.Tenant, err = c.Tenant(ctx, tenantID); err != nil {
			return b, fmt.Errorf("bootstrap: default tenant: %w", err)
		}
	} else {
		if opts.TenantID == "" {
			if opts.TenantID, err = c.newGUID(); err != nil {
				return b, err
			}
		}
		err := c.inTx(ctx, func(r run) error {
			if _, err := r.exec(ctx, `INSERT INTO tenants (id, display_name, created_at) VALUES (?, ?, ?)`,
				key(opts.TenantID), opts.TenantName, fmtTime(c.nowUTC())); err != nil && !c.d.isUniqueViolation(err) {
				return fmt.Errorf("create tenant: %w", err)
			}
			return setSetting(ctx, r, settingDefaultTenant, key(opts.TenantID))
		})
		if err != nil {
			return b, fmt.Errorf("bootstrap: %w", err)
		}
		if b.Tenant, err = c.Tenant(ctx, opts.TenantID); err != nil {
			return b, fmt.Errorf("bootstrap: %w", err)
		}
		b.Created = append(b.Created, "tenant")
	}

	subID, err := getSetting(ctx, c.r(), settingDefaultSubscription)
	if err != nil {
		return b, err
	}
	if subID != "" {
		b.Subscription, err = c.Subscription(ctx, subID)
	}
	if subID == "" || errors.Is(err, ErrNotFound) {
		if subID == "" {
			subID = opts.SubscriptionID
		}
		if subID == "" {
			if subID, err = c.newGUID(); err != nil {
				return b, err
			}
		}
		if b.Subscription, _, err = c.PutSubscription(ctx, Subscription{ID: subID, TenantID: b.Tenant.ID, DisplayName: DefaultName}); err != nil {
			return b, fmt.Errorf("bootstrap: default subscription: %w", err)
		}
		if err := c.inTx(ctx, func(r run) error { return setSetting(ctx, r, settingDefaultSubscription, b.Subscription.ID) }); err != nil {
			return b, fmt.Errorf("bootstrap: %w", err)
		}
		b.Created = append(b.Created, "subscription")
	} else if err != nil {
		return b, fmt.Errorf("bootstrap: default subscription: %w", err)
	}

	b.ResourceGroup, err = c.ResourceGroup(ctx, b.Subscription.ID, DefaultName)
	if errors.Is(err, ErrNotFound) {
		b.ResourceGroup, _, err = c.PutResourceGroup(ctx, ResourceGroup{SubscriptionID: b.Subscription.ID, Name: DefaultName, Location: opts.Location})
		b.Created = append(b.Created, "resourceGroup")
	}
	if err != nil {
		return b, fmt.Errorf("bootstrap: default resource group: %w", err)
	}

	b.Workspace, err = c.Workspace(ctx, b.Subscription.ID, b.ResourceGroup.Name, DefaultName)
	if errors.Is(err, ErrNotFound) {
		b.Workspace, _, err = c.PutWorkspace(ctx, Workspace{
			SubscriptionID: b.Subscription.ID, ResourceGroup: b.ResourceGroup.Name, Name: DefaultName, Location: opts.Location,
			EnableLogAccessUsingOnlyResourcePermissions: true,
		}, Precondition{IfNoneMatch: "*"}, opts.Actor)
		b.Created = append(b.Created, "workspace")
	}
	if err != nil {
		return b, fmt.Errorf("bootstrap: default workspace: %w", err)
	}
	if len(b.Created) > 0 {
		c.log.LogAttrs(ctx, slog.LevelInfo, "catalog bootstrapped",
			slog.Any("created", b.Created), slog.String("tenant_id", b.Tenant.ID),
			slog.String("subscription_id", b.Subscription.ID), slog.String("workspace_id", b.Workspace.CustomerID))
	}
	return b, nil
}

// DefaultSubscriptionID returns the subscription Bootstrap created, or "".
func (c *DB) DefaultSubscriptionID(ctx context.Context) (string, error) {
	return getSetting(ctx, c.r(), settingDefaultSubscription)
}

// DefaultTenantID returns the tenant Bootstrap created, or "".
func (c *DB) DefaultTenantID(ctx context.Context) (string, error) {
	return getSetting(ctx, c.r(), settingDefaultTenant)
}
