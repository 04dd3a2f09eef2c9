package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
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

// Source opens list/watches of core/v1 resources ("pods", "nodes",
// "services", "events") in all namespaces; tweak, if set, adjusts the list
// options (a field selector).
type Source interface {
	ListerWatcher(resource string, tweak func(*metav1.ListOptions)) cache.ListerWatcher
}

// RESTSource is a Source over a REST client of the core/v1 API group.
type RESTSource struct{ Client rest.Interface }

// ListerWatcher implements Source.
func (s RESTSource) ListerWatcher(resource string, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	return cache.NewFilteredListWatchFromClient(s.Client, resource, metav1.NamespaceAll, tweak)
}

// NewClient returns a Source for the API server. It reads nothing from the
// server yet. The client knows only the core/v1 types (its own small
// scheme, not client-go's full clientset scheme).
func NewClient(o ClientOptions) (Source, error) {
	cfg, err := restConfig(o)
	if err != nil {
		return nil, err
	}
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("kubernetes API server client: %w", err)
	}
	cfg.APIPath = "/api"
	cfg.ContentConfig = rest.ContentConfig{GroupVersion: &corev1.SchemeGroupVersion, ContentType: runtime.ContentTypeJSON,
		NegotiatedSerializer: serializer.NewCodecFactory(sch).WithoutConversion()}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API server client: %w", err)
	}
	return RESTSource{Client: rc}, nil
}

// restConfig resolves and checks the API server's URL and credentials.
func restConfig(o ClientOptions) (*rest.Config, error) {
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
	return &rest.Config{Host: u, BearerTokenFile: o.TokenFile, TLSClientConfig: rest.TLSClientConfig{CAFile: o.CAFile},
		UserAgent: o.UserAgent, QPS: 5, Burst: 10}, nil
}

// PodCache watches the pods of one node (a spec.nodeName field selector, so
// that a DaemonSet agent holds only its node's pods) and answers metadata
// lookups for container log enrichment and the opt-out annotation. A
// deleted pod stays known for GoneRetention, so that the last lines of its
// log files are still attributed (and still filtered). Pod is safe for
// concurrent use.
type PodCache struct {
	pods cache.SharedIndexInformer
	log  *slog.Logger

	mu   sync.Mutex // guards gone
	gone map[string]goneRecord
}

type goneRecord struct {
	md PodMetadata
	at time.Time
}

// GoneRetention is how long a deleted pod's metadata is kept.
const GoneRetention = 5 * time.Minute

// NewPodCache prepares the watch of node's pods ("" → every pod); Start
// starts it.
func NewPodCache(src Source, node string, log *slog.Logger) (*PodCache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tweak func(*metav1.ListOptions)
	if node != "" {
		sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
		tweak = func(lo *metav1.ListOptions) { lo.FieldSelector = sel }
	}
	pods, err := newInformer(src, "pods", tweak, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	c := &PodCache{pods: pods, log: log, gone: map[string]goneRecord{}}
	if _, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.onDelete}); err != nil {
		return nil, fmt.Errorf("pod watch: %w", err)
	}
	return c, nil
}

func (c *PodCache) onDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, g := range c.gone {
		if now.Sub(g.at) > GoneRetention {
			delete(c.gone, k)
		}
	}
	c.gone[p.Namespace+"/"+p.Name] = goneRecord{md: podMetadata(p), at: now}
}

// Start starts the watch; it runs until ctx ends. The returned func waits
// for it to stop.
func (c *PodCache) Start(ctx context.Context) (wait func()) {
	return runInformers(ctx, c.pods)
}

// WaitSynced waits until the first list is in the cache; false if ctx
// ended first.
func (c *PodCache) WaitSynced(ctx context.Context) bool {
	if !cache.WaitForCacheSync(ctx.Done(), c.pods.HasSynced) {
		return false
	}
	c.log.Info("pod metadata synced", slog.Int("pods", len(c.pods.GetStore().ListKeys())))
	return true
}

// Pod returns the metadata of a pod in the cache, or deleted recently.
func (c *PodCache) Pod(namespace, name string) (PodMetadata, bool) {
	if md, ok := podFromIndexer(c.pods, namespace, name); ok {
		return md, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.gone[namespace+"/"+name]
	if !ok || time.Since(g.at) > GoneRetention {
		return PodMetadata{}, false
	}
	return g.md, true
}
