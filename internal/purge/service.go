package purge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/store"
)

// Azure's throttles: 50 purge requests and 10 delete-data requests per hour.
const (
	DefaultPurgeLimit      = 50
	DefaultDeleteDataLimit = 10
	DefaultWindow          = time.Hour
	// DefaultMaxAttempts bounds how often an operation that fails for a
	// reason other than shutdown or a full disk is retried before it is
	// marked failed.
	DefaultMaxAttempts = 3
	// maxNoSpaceDelay caps the pause between attempts while the disk is
	// full (the pause doubles from RetryDelay): each attempt writes until
	// the disk refuses, taking the last free bytes ingestion needs.
	maxNoSpaceDelay = time.Minute
)

// Purger removes matching rows from a table. *store.DB implements it.
type Purger interface {
	Purge(ctx context.Context, ref store.TableRef, pred store.RowPredicate) (store.PurgeResult, error)
}

// Sealer encrypts the filters kept with a pending operation.
// *crypt.PlatformKey implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Options configures New. A zero field means the documented default.
type Options struct {
	// Catalog holds workspaces, tables and the operation queue. Required.
	Catalog *catalog.DB
	// Store runs the purges. Required.
	Store Purger
	// Keys seals the filters of queued operations. Required.
	Keys Sealer
	// Logger receives worker progress and failures. nil discards them.
	Logger *slog.Logger
	// PurgeLimit is how many purge requests a workspace may make per
	// Window; 0 means DefaultPurgeLimit.
	PurgeLimit int
	// DeleteDataLimit is the same for delete-data requests; 0 means
	// DefaultDeleteDataLimit.
	DeleteDataLimit int
	// Window is the rate-limit window; 0 means DefaultWindow.
	Window time.Duration
	// MaxAttempts: 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RetryDelay is the pause after a failed attempt; 0 means 5 s.
	RetryDelay time.Duration
	// Rand is the source of operation IDs; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Service accepts purge and delete-data requests and runs them. It is safe
// for concurrent use. Start runs the worker; Close stops it.
type Service struct {
	cat         *catalog.DB
	st          Purger
	keys        Sealer
	log         *slog.Logger
	limits      map[string]int
	window      time.Duration
	maxAttempts int
	retryDelay  time.Duration
	rand        io.Reader

	wake chan struct{}

	mu       sync.Mutex // guards cancel, done, attempts
	cancel   context.CancelFunc
	done     chan struct{}
	attempts map[string]int
	// noSpace counts the worker's consecutive rounds in which an operation
	// failed for lack of space; it sets the pause before the next round.
	// Only the worker goroutine uses it.
	noSpace int
}

// ThrottledError is returned by Submit when the workspace has used its
// requests for the window. It implements api.Coded (429).
type ThrottledError struct {
	Kind       string
	Limit      int
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	what := "purge"
	if e.Kind == catalog.PurgeKindDeleteData {
		what = "delete data"
	}
	return fmt.Sprintf("Too many %s requests: at most %d per hour per workspace. Retry after %d seconds.",
		what, e.Limit, int(e.RetryAfter.Round(time.Second)/time.Second))
}

// AzureError implements api.Coded.
func (e *ThrottledError) AzureError() (string, api.Kind) { return "TooManyRequests", api.KindThrottled }

// notAllowedError is a request Azure refuses for the table it targets.
type notAllowedError struct{ msg string }

func (e *notAllowedError) Error() string { return e.msg }

func (e *notAllowedError) AzureError() (string, api.Kind) {
	return "OperationNotAllowed", api.KindInvalid
}

// New returns a service; it starts nothing (see Start).
func New(opts Options) (*Service, error) {
	if opts.Catalog == nil || opts.Store == nil || opts.Keys == nil {
		return nil, errors.New("purge: catalog, store and keys are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PurgeLimit <= 0 {
		opts.PurgeLimit = DefaultPurgeLimit
	}
	if opts.DeleteDataLimit <= 0 {
		opts.DeleteDataLimit = DefaultDeleteDataLimit
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 5 * time.Second
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &Service{
		cat: opts.Catalog, st: opts.Store, keys: opts.Keys, log: opts.Logger,
		limits:      map[string]int{catalog.PurgeKindPurge: opts.PurgeLimit, catalog.PurgeKindDeleteData: opts.DeleteDataLimit},
		window:      opts.Window,
		maxAttempts: opts.MaxAttempts, retryDelay: opts.RetryDelay, rand: opts.Rand,
		wake: make(chan struct{}, 1), attempts: map[string]int{},
	}, nil
}

// Start runs the worker until Close: it resumes the operations left pending
// (by a restart or a crash) and then runs new ones as they are submitted,
// one at a time, oldest first. Calling Start twice is an error.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return errors.New("purge: already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(ctx, s.done)
	s.poke()
	return nil
}

// Close stops the worker and waits for it. A purge in progress is
// cancelled and stays pending; the next Start runs it again (the store's
// purge is idempotent: rows already removed are not found again).
func (s *Service) Close() error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return nil
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for s.runPending(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.nextDelay()):
			}
		}
	}
}

// nextDelay is the pause before the next round of retries.
func (s *Service) nextDelay() time.Duration { return s.delayAfter(s.noSpace) }

// delayAfter is the pause after noSpace consecutive rounds that failed for
// lack of space: RetryDelay, doubled per such round past the first, up to
// maxNoSpaceDelay (or RetryDelay if that is longer).
func (s *Service) delayAfter(noSpace int) time.Duration {
	d := s.retryDelay
	for i := 1; i < noSpace && d < maxNoSpaceDelay; i++ {
		d *= 2
	}
	return min(d, max(maxNoSpaceDelay, s.retryDelay))
}

// runPending runs every pending operation once and reports whether one
// failed and should be retried.
func (s *Service) runPending(ctx context.Context) (retry bool) {
	noSpace := false
	defer func() {
		if noSpace {
			s.noSpace++
		} else {
			s.noSpace = 0
		}
	}()
	ops, err := s.cat.PendingPurgeOperations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelError, "purge queue read failed", slog.Any("error", err))
		}
		return ctx.Err() == nil
	}
	for _, op := range ops {
		if ctx.Err() != nil {
			return false
		}
		again, full := s.runOne(ctx, op)
		retry = retry || again
		noSpace = noSpace || full

	}
	return retry
}

// runOne runs one operation and records its outcome; it reports whether the
// operation stays pending for a retry, and whether it failed for lack of
// space. A full disk (ENOSPC, EDQUOT: the store's or the catalog's) is not
// counted against MaxAttempts: the operation stays pending until the space
// returns, as a purge must eventually remove the data it was asked to.
func (s *Service) runOne(ctx context.Context, op catalog.PurgeOperation) (retry, noSpace bool) {
	log := s.log.With(slog.String("operation_id", op.ID), slog.String("kind", op.Kind),
		slog.String("workspace_id", op.CustomerID), slog.String("table", op.Table))
	if err := s.cat.StartPurgeOperation(ctx, op.ID); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "purge start record failed", slog.Any("error", err))
		return ctx.Err() == nil, isNoSpace(err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "purge started")
	res, err := s.execute(ctx, op)
	if err != nil && ctx.Err() != nil {
		log.LogAttrs(ctx, slog.LevelInfo, "purge interrupted; it stays pending")
		return false, false
	}
	if err != nil && isNoSpace(err) {
		log.LogAttrs(ctx, slog.LevelWarn, "purge attempt failed for lack of space; it stays pending and will retry",
			slog.Duration("retry_in", s.delayAfter(s.noSpace+1)), slog.Any("error", err))
		return true, true
	}
	status, errText := catalog.PurgeStatusCompleted, ""
	if err != nil {
		var perm *permanentError
		s.mu.Lock()
		s.attempts[op.ID]++
		n := s.attempts[op.ID]
		s.mu.Unlock()
		if !errors.As(err, &perm) && n < s.maxAttempts {
			log.LogAttrs(ctx, slog.LevelWarn, "purge attempt failed; will retry", slog.Int("attempt", n), slog.Any("error", err))
			return true, false
		}
		log.LogAttrs(ctx, slog.LevelError, "purge failed", slog.Int("attempt", n), slog.Any("error", err))
		status, errText = catalog.PurgeStatusFailed, "The operation failed."
		if perm != nil {
			errText = perm.msg
		}
	}
	if err == nil && len(res.Quarantined) > 0 {
		// The purge could not read quarantined parts: matching rows in them
		// are still on disk, so the operation must not say it completed.
		status, errText = catalog.PurgeStatusFailed, quarantineText(op.Table, res)
		log.LogAttrs(ctx, slog.LevelWarn, "purge incomplete: quarantined parts were not purged",
			slog.Int64("rows", res.RowsPurged), slog.Int("quarantined_parts", len(res.Quarantined)))
	}
	if ferr := s.cat.FinishPurgeOperation(ctx, op.ID, status, errText, res.RowsPurged); ferr != nil {
		log.LogAttrs(ctx, slog.LevelError, "purge finish record failed", slog.Any("error", ferr))
		return ctx.Err() == nil, isNoSpace(ferr)
	}
	s.mu.Lock()
	delete(s.attempts, op.ID)
	s.mu.Unlock()
	if status == catalog.PurgeStatusCompleted {
		log.LogAttrs(ctx, slog.LevelInfo, "purge completed", slog.Int64("rows", res.RowsPurged),
			slog.Int("parts_rewritten", res.PartsRewritten), slog.Int("parts_deleted", res.PartsDeleted))
	}
	return false, false
}

// isNoSpace reports a failure for lack of space on the store's or the
// catalog's filesystem (the catalog reports SQLITE_FULL as ENOSPC).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// quarantineText is the client-facing error of a purge that left
// quarantined parts unread.
func quarantineText(table string, res store.PurgeResult) string {
	var ids []string
	for _, q := range res.Quarantined[:min(len(res.Quarantined), 5)] {
		ids = append(ids, q.PartID)
	}
	more := ""
	if n := len(res.Quarantined) - len(ids); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("The purge removed %d rows but could not read %d quarantined part(s) of table '%s' (%s%s); "+
		"matching rows in them were not removed. Restore or delete the quarantined parts "+
		"(GET /providers/Custos.Admin/quarantinedParts) and purge again.",
		res.RowsPurged, len(res.Quarantined), table, strings.Join(ids, ", "), more)
}

// permanentError is a failure that retrying cannot fix; msg is client-facing.
type permanentError struct {
	msg string
	err error
}

func (e *permanentError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func filtersAAD(id string) []byte { return []byte("custos/purge-operation/" + id) }

func (s *Service) execute(ctx context.Context, op catalog.PurgeOperation) (store.PurgeResult, error) {
	plain, err := s.keys.Open(op.SealedFilters, filtersAAD(op.ID))
	if err != nil {
		return store.PurgeResult{}, &permanentError{"The stored filters could not be decrypted.", err}
	}
	var fs []Filter
	err = json.Unmarshal(plain, &fs)
	clear(plain)
	if err != nil {
		return store.PurgeResult{}, &permanentError{"The stored filters are unreadable.", err}
	}
	t, err := s.cat.TableByCustomerID(ctx, op.CustomerID, op.Table)
	if errors.Is(err, catalog.ErrNotFound) {
		return store.PurgeResult{}, &permanentError{"The table or workspace no longer exists.", err}
	}
	if err != nil {
		return store.PurgeResult{}, err
	}
	pred, err := Compile(fs, t.QuerySchema())
	if err != nil {
		return store.PurgeResult{}, &permanentError{"The filters no longer match the table's schema.", err}
	}
	res, err := s.st.Purge(ctx, t.Ref(), pred)
	if errors.Is(err, store.ErrTableNotFound) {
		// A table never written to has no data to remove.
		return res, nil
	}
	if errors.Is(err, store.ErrSchema) {
		return res, &permanentError{"The filters do not match the stored table.", err}
	}
	return res, err
}

// Request is a purge or delete-data request, decoded and authorized.
type Request struct {
	Kind      string // catalog.PurgeKindPurge or catalog.PurgeKindDeleteData
	Workspace catalog.Workspace
	Table     string
	Filters   []Filter
	CreatedBy string // caller object ID, for the record
}

// Submit validates req against the table's schema, applies the workspace's
// rate limit, queues the operation and wakes the worker. The filters are
// stored sealed. Errors: *InvalidError, *ThrottledError, catalog errors
// (table not found).
func (s *Service) Submit(ctx context.Context, req Request) (catalog.PurgeOperation, error) {
	limit, ok := s.limits[req.Kind]
	if !ok {
		return catalog.PurgeOperation{}, fmt.Errorf("purge: unknown kind %q", req.Kind)
	}
	w := req.Workspace
	t, err := s.cat.Table(ctx, w.SubscriptionID, w.ResourceGroup, w.Name, req.Table)
	if err != nil {
		return catalog.PurgeOperation{}, err
	}
	if t.Plan == catalog.PlanBasic {
		return catalog.PurgeOperation{}, &notAllowedError{fmt.Sprintf(
			"Data in table '%s' cannot be deleted while its plan is Basic. Change the table plan to Analytics first.", t.Name)}
	}
	if _, err := Compile(req.Filters, t.QuerySchema()); err != nil {
		return catalog.PurgeOperation{}, err
	}
	id, err := s.newID()
	if err != nil {
		return catalog.PurgeOperation{}, err
	}
	plain, err := json.Marshal(req.Filters)
	if err != nil {
		return catalog.PurgeOperation{}, fmt.Errorf("encode purge filters: %w", err)
	}
	sealed, err := s.keys.Seal(plain, filtersAAD(id))
	clear(plain)
	if err != nil {
		return catalog.PurgeOperation{}, fmt.Errorf("seal purge filters: %w", err)
	}
	op := catalog.PurgeOperation{
		ID: id, Kind: req.Kind, WorkspaceID: w.ID(), SubscriptionID: w.SubscriptionID, CustomerID: w.CustomerID,
		Location: w.Location, Table: t.Name, SealedFilters: sealed, CreatedBy: req.CreatedBy,
	}
	ok, retryAfter, err := s.cat.InsertPurgeOperation(ctx, &op, limit, s.window)
	if err != nil {
		return catalog.PurgeOperation{}, err
	}
	if !ok {
		return catalog.PurgeOperation{}, &ThrottledError{Kind: req.Kind, Limit: limit, RetryAfter: retryAfter}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "purge accepted", slog.String("operation_id", id), slog.String("kind", req.Kind),
		slog.String("workspace_id", w.CustomerID), slog.String("table", t.Name), slog.Int("filters", len(req.Filters)))
	s.poke()
	return op, nil
}

// Operation returns an operation by ID. A "purge-" prefix (the form of
// Azure's x-ms-status-location) is accepted. A missing one is
// catalog.ErrNotFound.
func (s *Service) Operation(ctx context.Context, id string) (catalog.PurgeOperation, error) {
	id = strings.ToLower(strings.TrimPrefix(strings.ToLower(id), "purge-"))
	if !catalog.IsGUID(id) {
		return catalog.PurgeOperation{}, operationNotFound(id)
	}
	return s.cat.PurgeOperationByID(ctx, id)
}

// OperationNotFoundError is the 404 of a status request.
type OperationNotFoundError struct{ ID string }

func (e *OperationNotFoundError) Error() string {
	return fmt.Sprintf("The operation '%s' could not be found.", clip(e.ID))
}

// AzureError implements api.Coded.
func (e *OperationNotFoundError) AzureError() (string, api.Kind) {
	return "OperationNotFound", api.KindNotFound
}

func operationNotFound(id string) error { return &OperationNotFoundError{ID: id} }

// OperationNotFound returns the error status handlers give for an
// operation that is missing or belongs to another scope.
func OperationNotFound(id string) error { return operationNotFound(id) }

func (s *Service) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}
