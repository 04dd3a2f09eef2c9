// Package inventory watches a Kubernetes API server with client-go informers
// and turns pods, nodes, services and events into Container insights'
// KubePodInventory, KubeNodeInventory, KubeServices, ContainerInventory and
// KubeEvents records, with periodic full snapshots as Azure's agent takes
// them. It also answers pod metadata lookups for container log enrichment
// (the opt-out annotation, labels, images).
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// Table names of the records Emit receives.
const (
	TablePods       = "KubePodInventory"
	TableNodes      = "KubeNodeInventory"
	TableServices   = "KubeServices"
	TableContainers = "ContainerInventory"
	TableEvents     = "KubeEvents"
)

// DefaultSnapshotInterval is how often full inventories are emitted (Azure's
// agent takes them every minute).
const DefaultSnapshotInterval = time.Minute

// EnvOptOut is the container environment variable that keeps a container's
// environment out of ContainerInventory even when collection is enabled.
const EnvOptOut = "AZMON_COLLECT_ENV"

// Options configure a Collector.
type Options struct {
	// Source lists and watches the API server's objects (NewClient's, or
	// one over client-go's fake clientset in tests). Required.
	Source Source
	// ClusterID and ClusterName fill ClusterId and ClusterName.
	ClusterID, ClusterName string
	// ResourceID is _ResourceId of every record ("" omits it).
	ResourceID string
	// Snapshot is the full inventory period; 0 → DefaultSnapshotInterval.
	Snapshot time.Duration
	// CollectEnvVars fills ContainerInventory.EnvironmentVar with the literal
	// environment values of a container's spec (never values from Secrets
	// or ConfigMaps), except for containers that set AZMON_COLLECT_ENV to
	// false and pods annotated fluentbit.io/exclude: "true". Off by default.
	CollectEnvVars bool
	// Namespaces, if set, decides which namespaces' pods, containers,
	// services and events are reported (the DCR's namespaceFilteringMode);
	// nodes are always reported. nil reports every namespace.
	Namespaces func(namespace string) bool
	// ResourceCounters adds the Perf table (TablePerf): the containers'
	// request and limit and the nodes' allocatable and capacity counters,
	// with every snapshot.
	ResourceCounters bool
	// Emit receives each table's records (JSON objects). Required. It is
	// called from one goroutine at a time.
	Emit   func(table string, records [][]byte) error
	Now    func() time.Time
	Logger *slog.Logger
}

// Collector is a running set of informers. Its Pod method is safe for
// concurrent use once Run has synced.
type Collector struct {
	o      Options
	log    *slog.Logger
	all    []cache.SharedIndexInformer
	pods   cache.SharedIndexInformer
	nodes  cache.SharedIndexInformer
	svcs   cache.SharedIndexInformer
	events cache.SharedIndexInformer

	mu         sync.Mutex // guards pending and seenEvents
	pending    []*corev1.Event
	seenEvents map[string]string // event UID → resourceVersion last emitted
}

// New prepares the informers; Run starts them.
func New(o Options) (*Collector, error) {
	if o.Source == nil || o.Emit == nil {
		return nil, errors.New("inventory: Source and Emit are required")
	}
	if o.Snapshot <= 0 {
		o.Snapshot = DefaultSnapshotInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{o: o, log: log, seenEvents: map[string]string{}}
	var err error
	for _, inf := range []struct {
		to       *cache.SharedIndexInformer
		resource string
		example  runtime.Object
	}{{&c.pods, "pods", &corev1.Pod{}}, {&c.nodes, "nodes", &corev1.Node{}}, {&c.svcs, "services", &corev1.Service{}}, {&c.events, "events", &corev1.Event{}}} {
		if *inf.to, err = newInformer(o.Source, inf.resource, nil, inf.example); err != nil {
			return nil, err
		}
		c.all = append(c.all, *inf.to)
	}
	onEvent := func(obj any) {
		if ev, ok := obj.(*corev1.Event); ok {
			c.mu.Lock()
			c.pending = append(c.pending, ev)
			c.mu.Unlock()
		}
	}
	if _, err := c.events.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onEvent,
		UpdateFunc: func(_, obj any) { onEvent(obj) },
	}); err != nil {
		return nil, fmt.Errorf("inventory: event handler: %w", err)
	}
	return c, nil
}

// newInformer watches one resource; its cache holds slimmed objects.
// Informers re-list every 10 minutes at most; watches carry the changes.
func newInformer(src Source, resource string, tweak func(*metav1.ListOptions), example runtime.Object) (cache.SharedIndexInformer, error) {
	inf := cache.NewSharedIndexInformer(src.ListerWatcher(resource, tweak), example, 10*time.Minute, cache.Indexers{})
	if err := inf.SetTransform(slim); err != nil {
		return nil, fmt.Errorf("inventory: %s informer: %w", resource, err)
	}
	return inf, nil
}

// runInformers runs infs until ctx ends and returns a wait for them to stop.
func runInformers(ctx context.Context, infs ...cache.SharedIndexInformer) (wait func()) {
	var wg sync.WaitGroup
	for _, inf := range infs {
		wg.Add(1)
		go func() { defer wg.Done(); inf.RunWithContext(ctx) }()
	}
	return wg.Wait
}

// slim drops what the inventory never reads from cached objects (managed
// fields, the last-applied annotation), which is most of a pod's size.
func slim(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		}
	}
	return obj, nil
}

// Run starts the informers, waits for their first lists, then emits a full
// inventory at once and every Snapshot, and new or changed events every
// second, until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	wait := runInformers(ctx, c.all...)
	defer wait()
	defer cancel()
	if !c.WaitSynced(ctx) {
		return nil // ctx ended
	}
	c.log.Info("kubernetes inventory synced", slog.Int("pods", len(c.pods.GetStore().ListKeys())),
		slog.Int("nodes", len(c.nodes.GetStore().ListKeys())), slog.Int("services", len(c.svcs.GetStore().ListKeys())))
	snap := time.NewTicker(c.o.Snapshot)
	defer snap.Stop()
	evTick := time.NewTicker(time.Second)
	defer evTick.Stop()
	c.snapshot()
	c.flushEvents()
	for {
		select {
		case <-ctx.Done():
			c.flushEvents()
			return nil
		case <-snap.C:
			c.snapshot()
		case <-evTick.C:
			c.flushEvents()
		}
	}
}

// Pod implements kube.MetadataLookup from the pod informer's cache.
func (c *Collector) Pod(namespace, name string) (PodMetadata, bool) {
	return podFromIndexer(c.pods, namespace, name)
}

func podFromIndexer(inf cache.SharedIndexInformer, namespace, name string) (PodMetadata, bool) {
	obj, ok, err := inf.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return PodMetadata{}, false
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return PodMetadata{}, false
	}
	return podMetadata(p), true
}

func podMetadata(p *corev1.Pod) PodMetadata {
	md := PodMetadata{UID: string(p.UID), Labels: p.Labels, Annotations: p.Annotations, Images: map[string]string{}, ContainerIDs: map[string]string{}}
	md.ControllerKind, md.ControllerName = controllerOf(p)
	for _, ct := range p.Spec.Containers {
		md.Images[ct.Name] = ct.Image
	}
	for _, st := range p.Status.ContainerStatuses {
		md.ContainerIDs[st.Name] = trimScheme(st.ContainerID)
	}
	return md
}

// PodMetadata mirrors kube.PodMetadata (this package does not import kube).
type PodMetadata struct {
	UID string
	// ControllerKind and ControllerName name the pod's controlling owner
	// (ReplicaSet, DaemonSet, StatefulSet, Job...); empty for bare pods.
	ControllerKind, ControllerName string
	Labels                         map[string]string
	Annotations                    map[string]string
	Images                         map[string]string
	ContainerIDs                   map[string]string
}

func (c *Collector) emit(table string, recs [][]byte) {
	if len(recs) == 0 {
		return
	}
	if err := c.o.Emit(table, recs); err != nil {
		c.log.Warn("queue inventory records", slog.String("table", table), slog.Any("error", err))
	}
}

func (c *Collector) snapshot() {
	now := c.o.Now().UTC()
	svcs := listAs[*corev1.Service](c.svcs)
	pods := listAs[*corev1.Pod](c.pods)
	nodes := listAs[*corev1.Node](c.nodes)
	var podRecs, ctRecs, nodeRecs, svcRecs [][]byte
	for _, p := range pods {
		if !c.allows(p.Namespace) {
			continue
		}
		svcNames := servicesOf(p, svcs)
		for _, r := range c.podRows(p, svcNames, now) {
			podRecs = append(podRecs, mustJSON(r))
		}
		for _, r := range c.containerRows(p, now) {
			ctRecs = append(ctRecs, mustJSON(r))
		}
	}
	for _, n := range nodes {
		nodeRecs = append(nodeRecs, mustJSON(c.nodeRow(n, now)))
	}
	for _, s := range svcs {
		if c.allows(s.Namespace) {
			svcRecs = append(svcRecs, mustJSON(c.serviceRow(s, now)))
		}
	}
	c.emit(TablePods, podRecs)
	c.emit(TableContainers, ctRecs)
	c.emit(TableNodes, nodeRecs)
	c.emit(TableServices, svcRecs)
	if c.o.ResourceCounters {
		c.emit(TablePerf, c.resourceRows(pods, nodes, now))
	}
}

func (c *Collector) flushEvents() {
	c.mu.Lock()
	evs := c.pending
	c.pending = nil
	var out [][]byte
	now := c.o.Now().UTC()
	for _, ev := range evs {
		uid := string(ev.UID)
		if uid == "" {
			uid = ev.Namespace + "/" + ev.Name
		}
		if c.seenEvents[uid] == ev.ResourceVersion && ev.ResourceVersion != "" {
			continue
		}
		c.seenEvents[uid] = ev.ResourceVersion
		if ns := ev.InvolvedObject.Namespace; ns != "" && !c.allows(ns) {
			continue
		}
		out = append(out, mustJSON(c.eventRow(ev, now)))
	}
	// Forget events the informer no longer holds (expired by the API server).
	if len(c.seenEvents) > 2*len(c.events.GetStore().ListKeys())+1024 {
		live := map[string]bool{}
		for _, ev := range listAs[*corev1.Event](c.events) {
			live[string(ev.UID)] = true
		}
		for k := range c.seenEvents {
			if !live[k] {
				delete(c.seenEvents, k)
			}
		}
	}
	c.mu.Unlock()
	c.emit(TableEvents, out)
}

func (c *Collector) allows(ns string) bool { return c.o.Namespaces == nil || c.o.Namespaces(ns) }

func listAs[T any](inf cache.SharedIndexInformer) []T {
	objs := inf.GetStore().List()
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// ts formats an optional time; nil for zero (the column stays empty).
func ts(t metav1.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func tsp(t *metav1.Time) *string {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func trimScheme(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		return id[i+3:]
	}
	return id
}

// labelsJSON is Azure's shape for label columns: a JSON array with one object.
func labelsJSON(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal([]map[string]string{m})
	return string(b)
}

type podRow struct {
	TimeGenerated              string  `json:"TimeGenerated"`
	ClusterID                  string  `json:"ClusterId"`
	ClusterName                string  `json:"ClusterName"`
	Computer                   string  `json:"Computer"`
	ContainerCreationTimeStamp *string `json:"ContainerCreationTimeStamp,omitempty"`
	ContainerID                string  `json:"ContainerID"`
	ContainerLastStatus        string  `json:"ContainerLastStatus"`
	ContainerName              string  `json:"ContainerName"`
	ContainerRestartCount      int32   `json:"ContainerRestartCount"`
	ContainerStartTime         *string `json:"ContainerStartTime,omitempty"`
	ContainerStatus            string  `json:"ContainerStatus"`
	ContainerStatusReason      string  `json:"ContainerStatusReason"`
	ControllerKind             string  `json:"ControllerKind"`
	ControllerName             string  `json:"ControllerName"`
	Name                       string  `json:"Name"`
	Namespace                  string  `json:"Namespace"`
	PodCreationTimeStamp       *string `json:"PodCreationTimeStamp,omitempty"`
	PodIP                      string  `json:"PodIp"`
	PodLabel                   string  `json:"PodLabel"`
	PodRestartCount            int32   `json:"PodRestartCount"`
	PodStartTime               *string `json:"PodStartTime,omitempty"`
	PodStatus                  string  `json:"PodStatus"`
	PodUID                     string  `json:"PodUid"`
	ServiceName                string  `json:"ServiceName"`
	SourceSystem               string  `json:"SourceSystem"`
	ResourceID                 string  `json:"_ResourceId,omitempty"`
}

func containerState(s corev1.ContainerState) (state, reason string, started *string) {
	switch {
	case s.Running != nil:
		return "Running", "", ts(s.Running.StartedAt)
	case s.Terminated != nil:
		return "Terminated", s.Terminated.Reason, ts(s.Terminated.StartedAt)
	case s.Waiting != nil:
		return "Waiting", s.Waiting.Reason, nil
	}
	return "", "", nil
}

func controllerOf(p *corev1.Pod) (kind, name string) {
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return o.Kind, o.Name
		}
	}
	return "", ""
}

// servicesOf names the services of the pod's namespace whose selector
// matches its labels.
func servicesOf(p *corev1.Pod, svcs []*corev1.Service) string {
	var out []string
	for _, s := range svcs {
		if s.Namespace != p.Namespace || len(s.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (c *Collector) podRows(p *corev1.Pod, svc string, now time.Time) []podRow {
	kind, ctrl := controllerOf(p)
	var restarts int32
	for _, st := range p.Status.ContainerStatuses {
		restarts += st.RestartCount
	}
	base := podRow{TimeGenerated: now.Format(time.RFC3339Nano), ClusterID: c.o.ClusterID, ClusterName: c.o.ClusterName,
		Computer: p.Spec.NodeName, ControllerKind: kind, ControllerName: ctrl, Name: p.Name, Namespace: p.Namespace,
		PodCreationTimeStamp: ts(p.CreationTimestamp), PodIP: p.Status.PodIP, PodLabel: labelsJSON(p.Labels), PodRestartCount: restarts,
		PodStartTime: tsp(p.Status.StartTime), PodStatus: string(p.Status.Phase), PodUID: string(p.UID), ServiceName: svc,
		SourceSystem: "Containers", ResourceID: c.o.ResourceID}
	statuses := map[string]corev1.ContainerStatus{}
	for _, st := range p.Status.ContainerStatuses {
		statuses[st.Name] = st
	}
	if len(p.Spec.Containers) == 0 {
		return []podRow{base}
	}
	out := make([]podRow, 0, len(p.Spec.Containers))
	for _, ct := range p.Spec.Containers {
		r := base
		r.ContainerName = string(p.UID) + "/" + ct.Name
		if st, ok := statuses[ct.Name]; ok {
			r.ContainerID = trimScheme(st.ContainerID)
			r.ContainerRestartCount = st.RestartCount
			r.ContainerStatus, r.ContainerStatusReason, r.ContainerStartTime = containerState(st.State)
			r.ContainerCreationTimeStamp = r.ContainerStartTime
			if ls, reason, _ := containerState(st.LastTerminationState); ls != "" {
				r.ContainerLastStatus = strings.TrimSpace(ls + " " + reason)
			}
		}
		out = append(out, r)
	}
	return out
}

type containerRow struct {
	TimeGenerated     string  `json:"TimeGenerated"`
	Computer          string  `json:"Computer"`
	Command           string  `json:"Command"`
	ContainerHostname string  `json:"ContainerHostname"`
	ContainerID       string  `json:"ContainerID"`
	ContainerState    string  `json:"ContainerState"`
	CreatedTime       *string `json:"CreatedTime,omitempty"`
	EnvironmentVar    string  `json:"EnvironmentVar"`
	ExitCode          *int32  `json:"ExitCode,omitempty"`
	FinishedTime      *string `json:"FinishedTime,omitempty"`
	Image             string  `json:"Image"`
	ImageID           string  `json:"ImageID"`
	ImageTag          string  `json:"ImageTag"`
	Name              string  `json:"Name"`
	Ports             string  `json:"Ports"`
	Repository        string  `json:"Repository"`
	SourceSystem      string  `json:"SourceSystem"`
	StartedTime       *string `json:"StartedTime,omitempty"`
	ResourceID        string  `json:"_ResourceId,omitempty"`
}

// splitImage splits an image reference into repository (registry host,
// when present), image and tag: "registry.io/team/app:1.2" →
// ("registry.io", "team/app", "1.2"); "nginx" → ("", "nginx", "latest").
func splitImage(ref string) (repo, image, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	image = ref
	if i := strings.IndexByte(ref, '/'); i > 0 && (strings.ContainsAny(ref[:i], ".:") || ref[:i] == "localhost") {
		repo, image = ref[:i], ref[i+1:]
	}
	tag = "latest"
	if i := strings.LastIndexByte(image, ':'); i > 0 {
		image, tag = image[:i], image[i+1:]
	}
	return repo, image, tag
}

// ExcludeAnnotation opts a pod out of log collection, environment
// variable collection and Prometheus scraping when its value is "true"
// (Container insights' fluentbit.io/exclude).
const ExcludeAnnotation = "fluentbit.io/exclude"

// OptedOut reports whether the pod carries ExcludeAnnotation: "true".
func OptedOut(p *corev1.Pod) bool {
	return strings.EqualFold(strings.TrimSpace(p.Annotations[ExcludeAnnotation]), "true")
}

// envAllowed reports whether a container's environment may be collected:
// only when collection is on and the container does not opt out.
func envAllowed(on bool, ct corev1.Container) bool {
	if !on {
		return false
	}
	for _, e := range ct.Env {
		if e.Name == EnvOptOut && strings.EqualFold(strings.TrimSpace(e.Value), "false") {
			return false
		}
	}
	return true
}

func (c *Collector) containerRows(p *corev1.Pod, now time.Time) []containerRow {
	statuses := map[string]corev1.ContainerStatus{}
	for _, st := range p.Status.ContainerStatuses {
		statuses[st.Name] = st
	}
	out := make([]containerRow, 0, len(p.Spec.Containers))
	for _, ct := range p.Spec.Containers {
		repo, image, tag := splitImage(ct.Image)
		r := containerRow{TimeGenerated: now.Format(time.RFC3339Nano), Computer: p.Spec.NodeName, ContainerHostname: p.Name,
			Name: string(p.UID) + "/" + ct.Name, Image: image, ImageTag: tag, Repository: repo, SourceSystem: "Containers",
			ResourceID: c.o.ResourceID}
		if cmd := append(append([]string(nil), ct.Command...), ct.Args...); len(cmd) > 0 {
			b, _ := json.Marshal(cmd)
			r.Command = string(b)
		}
		if len(ct.Ports) > 0 {
			b, _ := json.Marshal(ct.Ports)
			r.Ports = string(b)
		}
		if envAllowed(c.o.CollectEnvVars, ct) && !OptedOut(p) {
			var env []string
			for _, e := range ct.Env {
				if e.ValueFrom == nil { // never values from Secrets or ConfigMaps
					env = append(env, e.Name+"="+e.Value)
				}
			}
			if len(env) > 0 {
				b, _ := json.Marshal(env)
				r.EnvironmentVar = string(b)
			}
		}
		if st, ok := statuses[ct.Name]; ok {
			r.ContainerID = trimScheme(st.ContainerID)
			r.ImageID = st.ImageID
			r.ContainerState, _, r.StartedTime = containerState(st.State)
			r.CreatedTime = r.StartedTime
			if t := st.State.Terminated; t != nil {
				code := t.ExitCode
				r.ExitCode = &code
				r.FinishedTime = ts(t.FinishedAt)
			}
		}
		out = append(out, r)
	}
	return out
}

type nodeRow struct {
	TimeGenerated           string  `json:"TimeGenerated"`
	ClusterID               string  `json:"ClusterId"`
	ClusterName             string  `json:"ClusterName"`
	Computer                string  `json:"Computer"`
	CreationTimeStamp       *string `json:"CreationTimeStamp,omitempty"`
	DockerVersion           string  `json:"DockerVersion"`
	KubeletVersion          string  `json:"KubeletVersion"`
	KubeProxyVersion        string  `json:"KubeProxyVersion"`
	KubernetesProviderID    string  `json:"KubernetesProviderID"`
	Labels                  string  `json:"Labels"`
	LastTransitionTimeReady *string `json:"LastTransitionTimeReady,omitempty"`
	OperatingSystem         string  `json:"OperatingSystem"`
	SourceSystem            string  `json:"SourceSystem"`
	Status                  string  `json:"Status"`
	ResourceID              string  `json:"_ResourceId,omitempty"`
}

func (c *Collector) nodeRow(n *corev1.Node, now time.Time) nodeRow {
	r := nodeRow{TimeGenerated: now.Format(time.RFC3339Nano), ClusterID: c.o.ClusterID, ClusterName: c.o.ClusterName, Computer: n.Name,
		CreationTimeStamp: ts(n.CreationTimestamp), DockerVersion: n.Status.NodeInfo.ContainerRuntimeVersion,
		KubeletVersion: n.Status.NodeInfo.KubeletVersion, KubeProxyVersion: n.Status.NodeInfo.KubeProxyVersion, //lint:ignore SA1019 Azure's column; older kubelets still report it
		KubernetesProviderID: n.Spec.ProviderID, Labels: labelsJSON(n.Labels), OperatingSystem: n.Status.NodeInfo.OSImage,
		SourceSystem: "Containers", ResourceID: c.o.ResourceID}
	var conds []string
	for _, cd := range n.Status.Conditions {
		if cd.Type == corev1.NodeReady {
			r.LastTransitionTimeReady = ts(cd.LastTransitionTime)
			if cd.Status != corev1.ConditionTrue {
				conds = append(conds, "NotReady")
				continue
			}
		}
		if cd.Status == corev1.ConditionTrue {
			conds = append(conds, string(cd.Type))
		}
	}
	r.Status = strings.Join(conds, ",")
	return r
}

type serviceRow struct {
	TimeGenerated  string `json:"TimeGenerated"`
	ClusterID      string `json:"ClusterId"`
	ClusterIP      string `json:"ClusterIp"`
	ClusterName    string `json:"ClusterName"`
	Namespace      string `json:"Namespace"`
	SelectorLabels string `json:"SelectorLabels"`
	ServiceName    string `json:"ServiceName"`
	ServiceType    string `json:"ServiceType"`
	SourceSystem   string `json:"SourceSystem"`
	ResourceID     string `json:"_ResourceId,omitempty"`
}

func (c *Collector) serviceRow(s *corev1.Service, now time.Time) serviceRow {
	return serviceRow{TimeGenerated: now.Format(time.RFC3339Nano), ClusterID: c.o.ClusterID, ClusterIP: s.Spec.ClusterIP,
		ClusterName: c.o.ClusterName, Namespace: s.Namespace, SelectorLabels: labelsJSON(s.Spec.Selector), ServiceName: s.Name,
		ServiceType: string(s.Spec.Type), SourceSystem: "Containers", ResourceID: c.o.ResourceID}
}

type eventRow struct {
	TimeGenerated   string  `json:"TimeGenerated"`
	ClusterID       string  `json:"ClusterId"`
	ClusterName     string  `json:"ClusterName"`
	Computer        string  `json:"Computer"`
	Count           float64 `json:"Count"`
	FirstSeen       *string `json:"FirstSeen,omitempty"`
	KubeEventType   string  `json:"KubeEventType"`
	LastSeen        *string `json:"LastSeen,omitempty"`
	Message         string  `json:"Message"`
	Name            string  `json:"Name"`
	Namespace       string  `json:"Namespace"`
	ObjectKind      string  `json:"ObjectKind"`
	Reason          string  `json:"Reason"`
	SourceComponent string  `json:"SourceComponent"`
	SourceSystem    string  `json:"SourceSystem"`
	ResourceID      string  `json:"_ResourceId,omitempty"`
}

func (c *Collector) eventRow(ev *corev1.Event, now time.Time) eventRow {
	count := float64(ev.Count)
	if count == 0 {
		count = 1
	}
	first, last := ts(ev.FirstTimestamp), ts(ev.LastTimestamp)
	if last == nil && !ev.EventTime.IsZero() {
		s := ev.EventTime.UTC().Format(time.RFC3339)
		last = &s
	}
	if first == nil {
		first = last
	}
	src := ev.Source.Component
	if src == "" {
		src = ev.ReportingController
	}
	computer := ev.Source.Host
	if computer == "" && ev.InvolvedObject.Kind == "Node" {
		computer = ev.InvolvedObject.Name
	}
	return eventRow{TimeGenerated: now.Format(time.RFC3339Nano), ClusterID: c.o.ClusterID, ClusterName: c.o.ClusterName,
		Computer: computer, Count: count, FirstSeen: first, KubeEventType: ev.Type, LastSeen: last, Message: ev.Message,
		Name: ev.InvolvedObject.Name, Namespace: ev.InvolvedObject.Namespace, ObjectKind: ev.InvolvedObject.Kind,
		Reason: ev.Reason, SourceComponent: src, SourceSystem: "Containers", ResourceID: c.o.ResourceID}
}

// WaitSynced waits until Run's informers have their first lists; false if
// ctx ended first.
func (c *Collector) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), c.pods.HasSynced, c.nodes.HasSynced, c.svcs.HasSynced, c.events.HasSynced)
}
