package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// ClientOptions locate and authenticate to the API server.
type ClientOptions struct {
	// URL is the API server's https base URL; "" → in-cluster
	// (https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT).
	URL string
	// TokenFile is the ServiceAccount token, re-read as it rotates; CAFile
	// verifies the API server. Both required.
	TokenFile, CAFile string
	// UserAgent names the client in the API server's audit log.
	UserAgent string
}

// NewClient returns a clientset for the API server. It reads nothing from
// the server yet.
func NewClient(o ClientOptions) (kubernetes.Interface, error) {
	u := o.URL
	if u == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("kubernetes API server: kubernetes.apiServerURL is not set and KUBERNETES_SERVICE_HOST/PORT are not in the environment (not in a pod)")
		}
		u = "https://" + net.JoinHostPort(host, port)
	}
	if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
		return nil, fmt.Errorf("kubernetes API server URL %q: want an https:// URL", u)
	}
	if o.TokenFile == "" || o.CAFile == "" {
		return nil, errors.New("kubernetes API server: the ServiceAccount token file and CA file are required")
	}
	if _, err := os.Stat(o.CAFile); err != nil {
		return nil, fmt.Errorf("kubernetes API server CA: %w", err)
	}
	cfg := &rest.Config{Host: u, BearerTokenFile: o.TokenFile, TLSClientConfig: rest.TLSClientConfig{CAFile: o.CAFile},
		UserAgent: o.UserAgent, QPS: 5, Burst: 10, Timeout: 0}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API server client: %w", err)
	}
	return cs, nil
}

// PodCache watches the pods of one node (a spec.nodeName field selector, so
// that a DaemonSet agent holds only its node's pods) and answers metadata
// lookups for container log enrichment and the opt-out annotation. Pod is
// safe for concurrent use.
type PodCache struct {
	factory informers.SharedInformerFactory
	pods    cache.SharedIndexInformer
	log     *slog.Logger
}

// NewPodCache prepares the watch of node's pods ("" → every pod); Run
// starts it.
func NewPodCache(client kubernetes.Interface, node string, log *slog.Logger) *PodCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []informers.SharedInformerOption{informers.WithTransform(slim)}
	if node != "" {
		sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
		opts = append(opts, informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = sel }))
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, opts...)
	return &PodCache{factory: f, pods: f.Core().V1().Pods().Informer(), log: log}
}

// Sync starts the watch and waits until the first list is in the cache (or
// ctx ends); the watch runs until ctx ends. Call it once.
func (c *PodCache) Sync(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	context.AfterFunc(ctx, c.factory.Shutdown)
	for typ, ok := range c.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("pod watch (%v) did not sync: %w", typ, context.Cause(ctx))
		}
	}
	c.log.Info("pod metadata synced", slog.Int("pods", len(c.pods.GetStore().ListKeys())))
	return nil
}

// Pod returns the metadata of a pod in the cache.
func (c *PodCache) Pod(namespace, name string) (PodMetadata, bool) {
	return podFromIndexer(c.pods, namespace, name)
}

