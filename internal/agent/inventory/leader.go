package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election defaults: those of the Kubernetes control plane's
// components (kube-controller-manager, kube-scheduler).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ElectOptions configure Elect.
type ElectOptions struct {
	Client ClientOptions
	// Namespace and Name of the coordination.k8s.io/v1 Lease; required.
	Namespace, Name string
	// Identity of this candidate (unique among the candidates); required.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go's
	// leaderelection; 0 → the defaults above.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Logger                                    *slog.Logger
}

// Elect campaigns for the Lease with client-go's leader election and runs
// run while this candidate holds it. run's context ends when the lease is
// lost (run must then stop: another candidate may already lead) or ctx
// ends. Elect returns when ctx ends, after run has returned and the lease
// has been released, so that a standby takes over at once after a clean
// shutdown (and within LeaseDuration after a crash). After a lost lease it
// waits for run to return and campaigns again.
func Elect(ctx context.Context, o ElectOptions, run func(context.Context)) error {
	if o.Namespace == "" || o.Name == "" || o.Identity == "" {
		return errors.New("leader election: the lease namespace, name and identity are required")
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With(slog.String("lease", o.Namespace+"/"+o.Name), slog.String("identity", o.Identity))
	cfg, err := restConfig(o.Client)
	if err != nil {
		return err
	}
	cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	leases, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	lock := &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name}, Client: leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity}}
	for ctx.Err() == nil {
		if err := electOnce(ctx, o, lock, lg, run); err != nil {
			return err
		}
	}
	return nil
}

// electOnce campaigns until this candidate has led and lost (or ctx ended).
// The elector's own context ends only after run returned, so that the
// lease (ReleaseOnCancel) is never released while run still works.
func electOnce(ctx context.Context, o ElectOptions, lock resourcelock.Interface, lg *slog.Logger, run func(context.Context)) error {
	electCtx, stopElect := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElect()
	var (
		mu      sync.Mutex
		leading bool
		wg      sync.WaitGroup
	)
	stopWatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading { // still campaigning: stop; a leader's run stops first
			stopElect()
		}
	})
	defer stopWatch()
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		ReleaseOnCancel: true, Name: o.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				mu.Lock()
				if ctx.Err() != nil || lctx.Err() != nil {
					mu.Unlock()
					stopElect()
					return
				}
				leading = true
				wg.Add(1)
				mu.Unlock()
				defer wg.Done()
				defer stopElect()
				rctx, cancel := context.WithCancel(lctx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				lg.Info("leading: this agent collects")
				run(rctx)
			},
			OnStoppedLeading: func() {
				mu.Lock()
				defer mu.Unlock()
				if leading {
					lg.Info("stopped leading")
				}
			},
			OnNewLeader: func(id string) {
				if id != o.Identity {
					lg.Info("standing by: another agent leads", slog.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(electCtx)
	wg.Wait()
	return nil
}
