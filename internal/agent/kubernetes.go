package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"custos/internal/agent/inventory"
	"custos/internal/agent/kube"
	"custos/internal/agent/tail"
)

// StreamContainerLogV2 is the built-in stream of container logs.
const StreamContainerLogV2 = "Microsoft-ContainerLogV2"

// StreamKubeAudit is the stream of API server audit events (KubeAudit).
const StreamKubeAudit = "Microsoft-KubeAudit"

// kubeSettings is the effective configuration of one ContainerInsights
// extension: the agent's kubernetes section overridden by what the rule's
// dataCollectionSettings set.
type kubeSettings struct {
	name     string // rule/extension, for logs
	key      string // checkpoint file key
	interval time.Duration
	filter   kube.NamespaceFilter
}

func (a *Agent) kubeSettingsFor(r *DCR, ext ExtensionSource) (kubeSettings, error) {
	k := a.cfg.Kubernetes
	ks := kubeSettings{name: r.Name + "/" + ext.Name, interval: k.Interval,
		filter: kube.NamespaceFilter{Mode: kube.FilterMode(k.NamespaceFilteringMode), Namespaces: k.Namespaces}}
	sum := sha256.Sum256([]byte(r.ImmutableID + "\x00" + ext.Name))
	ks.key = hex.EncodeToString(sum[:12])
	set, err := ext.ContainerInsights()
	if err != nil {
		return ks, err
	}
	if set.Interval > 0 {
		ks.interval = set.Interval
	}
	if set.NamespaceFilteringMode != "" {
		ks.filter.Mode = kube.FilterMode(set.NamespaceFilteringMode)
	}
	if set.NamespacesSet {
		ks.filter.Namespaces = set.Namespaces
	}
	if set.EnableContainerLogV2 != nil && !*set.EnableContainerLogV2 {
		a.log.Warn("enableContainerLogV2 is false, but custos-agent writes only ContainerLogV2 (the v1 ContainerLog table is not supported); "+
			"container logs go to the rule's Microsoft-ContainerLogV2 stream if it has one", slog.String("extension", ks.name))
	}
	return ks, ks.filter.Validate()
}

// startKube starts the collectors a ContainerInsights extension asks for
// and returns the source names for the status.
func (a *Agent) startKube(ctx context.Context, r *DCR, ext ExtensionSource, targets func([]string) []target, start func(func())) []string {
	if !a.cfg.Kubernetes.Enabled {
		a.log.Warn("the rule has a ContainerInsights extension but kubernetes.enabled is false; ignored",
			slog.String("rule", r.Name), slog.String("extension", ext.Name))
		return nil
	}
	ks, err := a.kubeSettingsFor(r, ext)
	if err != nil {
		a.collectError("ContainerInsights extension "+r.Name+"/"+ext.Name, err)
		return nil
	}
	cluster := a.cfg.Kubernetes.Role == KubeRoleCluster
	var logT, perfT, imT, auditT []target
	invT := map[string][]target{}
	for _, t := range targets(ext.Streams) {
		table, isInv := inventoryTable(t.Stream)
		switch {
		case isInv && cluster:
			invT[table] = append(invT[table], t)
		case cluster && strings.EqualFold(t.Stream, StreamPerf):
			// The request, limit, allocatable and capacity counters come from
			// the API server's pods and nodes; usage from each node's kubelet.
			invT[inventory.TablePerf] = append(invT[inventory.TablePerf], t)
		case isInv, cluster && !strings.EqualFold(t.Stream, StreamInsightsMetrics):
			// The other role collects it: inventory and events once per
			// cluster (the Deployment), files and kubelet per node (the DaemonSet).
			a.log.Debug("stream collected by the agent of the other kubernetes.role", slog.String("extension", ks.name),
				slog.String("stream", t.Stream), slog.String("role", a.cfg.Kubernetes.Role))
		case strings.EqualFold(t.Stream, StreamContainerLogV2):
			logT = append(logT, t)
		case strings.EqualFold(t.Stream, StreamPerf):
			perfT = append(perfT, t)
		case strings.EqualFold(t.Stream, StreamInsightsMetrics):
			imT = append(imT, t)
		case strings.EqualFold(t.Stream, StreamKubeAudit):
			auditT = append(auditT, t)
		default:
			a.log.Warn("stream of the ContainerInsights extension is not collected by custos-agent",
				slog.String("extension", ks.name), slog.String("stream", t.Stream))
		}
	}
	var sources []string
	if cluster {
		envOn, err := envVarsEnabled(ext)
		if err != nil {
			a.collectError("ContainerInsights extension "+ks.name, err)
			return nil
		}
		if len(invT)+len(imT) > 0 {
			start(func() {
				a.whileLeading(ctx, ks, func(lctx context.Context) { a.runKubeCluster(lctx, ks, invT, imT, envOn) })
			})
			sources = append(sources, "containerInsights:"+ext.Name+":inventory")
			if len(imT) > 0 {
				sources = append(sources, "containerInsights:"+ext.Name+":prometheus")
			}
		}
		return sources
	}
	pods := &nodePods{}
	if !a.cfg.Kubernetes.DisablePodMetadata && len(logT)+len(perfT)+len(imT) > 0 {
		start(func() { <-ctx.Done(); pods.stop() })
	}
	if len(logT) > 0 {
		start(func() { a.runKubeLogs(ctx, ks, logT, pods) })
		sources = append(sources, "containerInsights:"+ext.Name+":logs")
	}
	if len(auditT) > 0 {
		if len(a.cfg.Kubernetes.AuditLogPaths) == 0 {
			a.collectError("ContainerInsights extension "+ks.name, errors.New("the rule asks for Microsoft-KubeAudit but kubernetes.auditLogPaths is empty"))
		} else {
			start(func() { a.runKubeAudit(ctx, ks, auditT) })
			sources = append(sources, "containerInsights:"+ext.Name+":audit")
		}
	}
	if len(perfT)+len(imT) > 0 {
		start(func() { a.runKubelet(ctx, ks, perfT, imT, pods) })
		sources = append(sources, "containerInsights:"+ext.Name+":kubelet")
	}
	return sources
}

// nodePods is one watch of the node's pods, shared by the container log
// and kubelet collectors of an extension, started by the first that needs it.
type nodePods struct {
	once sync.Once
	md   kube.MetadataLookup
	wait func()
	ok   bool
}

// get starts the watch (once) and waits for its first list; false when ctx
// ended or the watch cannot be set up (reported).
func (n *nodePods) get(ctx context.Context, a *Agent, lg *slog.Logger) (kube.MetadataLookup, bool) {
	n.once.Do(func() { n.md, n.wait, n.ok = a.podMetadata(ctx, lg) })
	return n.md, n.ok
}

// stop waits for the watch to end; call it after ctx ended.
func (n *nodePods) stop() {
	n.once.Do(func() {})
	if n.wait != nil {
		n.wait()
	}
}

// optedOut reports whether the pod is annotated fluentbit.io/exclude: "true"
// or unknown to the watch (its annotation cannot be checked: fail closed).
func optedOut(md kube.MetadataLookup) func(namespace, pod string) bool {
	return func(namespace, pod string) bool {
		m, ok := md.Pod(namespace, pod)
		return !ok || strings.EqualFold(m.Annotations[kube.ExcludeAnnotation], "true")
	}
}

// kubeLogPattern is the glob of container log files under root.
func kubeLogPattern(root string) string {
	if filepath.Base(filepath.Clean(root)) == "containers" {
		return filepath.Join(root, "*.log")
	}
	return filepath.Join(root, "*", "*", "*.log")
}

func marshalRows[T any](rows []T) [][]byte {
	out := make([][]byte, 0, len(rows))
	for _, r := range rows {
		if b, err := json.Marshal(r); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// enqueueAll queues records for every target; it reports whether all succeeded.
func (a *Agent) enqueueAll(ts []target, recs [][]byte, what string) bool {
	ok := true
	for _, t := range ts {
		if err := a.enqueue(t, recs); err != nil {
			a.collectError("queue "+what, err)
			ok = false
		}
	}
	return ok
}

// kubeLogChunk is how many container log rows are encoded and queued at once.
const kubeLogChunk = 1000

// runKubeLogs tails the container log files into ContainerLogV2 rows until
// ctx ends. Positions are committed after the rows are in the disk queue.
func (a *Agent) runKubeLogs(ctx context.Context, ks kubeSettings, ts []target, pods *nodePods) {
	k := a.cfg.Kubernetes
	lg := a.log.With(slog.String("extension", ks.name))
	lo := kube.LogOptions{Computer: a.node, ResourceID: k.ClusterResourceID, Namespaces: ks.filter, Logger: lg, Now: a.now,
		DisableStdout: !k.LogCollection.Stdout.On(), DisableStderr: !k.LogCollection.Stderr.On(),
		StdoutExcludeNamespaces: k.LogCollection.Stdout.ExcludeNamespaces, StderrExcludeNamespaces: k.LogCollection.Stderr.ExcludeNamespaces}
	if lo.DisableStdout && lo.DisableStderr {
		lg.Warn("kubernetes.logCollection turns off both stdout and stderr: no container log line is collected")
	}
	if k.DisablePodMetadata {
		lg.Warn("kubernetes.disablePodMetadata is set: container logs carry no KubernetesMetadata and the fluentbit.io/exclude opt-out annotation is NOT honoured")
	} else {
		md, ok := pods.get(ctx, a, lg)
		if !ok {
			return
		}
		lo.Metadata, lo.FilterUsingAnnotations, lo.IncludeMetadata, lo.RequireMetadata = md, true, true, true
	}
	lc, err := kube.NewLogCollector(lo)
	if err != nil {
		a.collectError("container logs "+ks.name, err)
		return
	}
	tl, err := tail.Open(tail.Options{
		Patterns:  []string{kubeLogPattern(k.LogRoot)},
		StatePath: filepath.Join(a.cfg.StateDir, "files", "kube-"+ks.key+".json"),
		// Runtimes split lines at 16 KB (CRI P pieces, Docker json-file), and
		// messages are cut at 64 KB: a longer raw line is never whole. A
		// backlog across many files is read 8 MB per poll.
		MaxRecordBytes: 128 << 10,
		MaxPollBytes:   8 << 20,
		ReadFromStart:  a.cfg.Files.ReadFromStart,
		FlushAfter:     max(2*a.cfg.Files.PollInterval, time.Second),
		Now:            a.now,
		Logger:         lg,
	})
	if err != nil {
		a.collectError("container logs "+ks.name, err)
		return
	}
	defer tl.Close()
	lg.Info("collecting container logs", slog.String("pattern", kubeLogPattern(k.LogRoot)),
		slog.String("namespace_filter", string(ks.filter.Mode)), slog.Any("namespaces", ks.filter.Namespaces),
		slog.Bool("stdout", !lo.DisableStdout), slog.Any("stdout_exclude_namespaces", lo.StdoutExcludeNamespaces),
		slog.Bool("stderr", !lo.DisableStderr), slog.Any("stderr_exclude_namespaces", lo.StderrExcludeNamespaces))
	tick := time.NewTicker(a.cfg.Files.PollInterval)
	defer tick.Stop()
	var bad uint64
	var u unqueued
	commit := func() {
		// Lines still in memory (held for their pod's metadata, pieces of a
		// partial message) hold their files' checkpoints: a restart reads
		// them again.
		if err := tl.Commit(lc.Holds()...); err != nil {
			a.collectError("save container log checkpoints", err)
		}
	}
	for {
		if !u.empty() {
			// The queue refused rows: neither read on nor commit until they
			// are queued (a restart meanwhile reads them again).
			if !a.retry(&u, "container logs") {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				continue
			}
			commit()
		}
		recs, err := tl.Poll()
		if err != nil {
			a.collectError("read container log files", err)
		}
		// Rows go to the queue in chunks, so that a large poll (a backlog
		// after a restart) does not hold all of its rows in memory at once.
		rows := make([]kube.ContainerLogV2, 0, kubeLogChunk)
		flush := func() {
			if len(rows) > 0 {
				a.queueOrKeep(&u, ts, marshalRows(rows), "container logs")
				clear(rows)
				rows = rows[:0]
			}
		}
		for i, r := range recs {
			got, err := lc.AddAt(r.Path, r.Start, []byte(r.Text))
			recs[i] = tail.Record{}
			if err != nil {
				a.c.CollectErrors.Add(1)
				if bad++; bad%1000 == 1 {
					lg.Warn("unparsable container log line skipped", slog.Any("error", err), slog.Uint64("skipped_total", bad))
				}
				continue
			}
			if rows = append(rows, got...); len(rows) >= kubeLogChunk {
				flush()
			}
		}
		for _, p := range tl.Closed() {
			rows = append(rows, lc.Forget(p)...)
		}
		rows = append(rows, lc.Pending()...)
		flush()
		for _, p := range lc.Rewinds() {
			tl.Rewind(p) // the held lines were full: read the rest again later
		}
		if u.empty() {
			commit()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// runKubeAudit tails the API server's audit log files into KubeAudit rows
// until ctx ends; positions are committed after the rows are queued.
func (a *Agent) runKubeAudit(ctx context.Context, ks kubeSettings, ts []target) {
	k := a.cfg.Kubernetes
	lg := a.log.With(slog.String("extension", ks.name), slog.String("source", "audit"))
	tl, err := tail.Open(tail.Options{
		Patterns:      k.AuditLogPaths,
		StatePath:     filepath.Join(a.cfg.StateDir, "files", "kube-audit-"+ks.key+".json"),
		ReadFromStart: a.cfg.Files.ReadFromStart,
		FlushAfter:    max(2*a.cfg.Files.PollInterval, time.Second),
		Now:           a.now,
		Logger:        lg,
	})
	if err != nil {
		a.collectError("audit logs "+ks.name, err)
		return
	}
	defer tl.Close()
	pod := k.AuditPodName
	if pod == "" {
		pod = a.node
	}
	tick := time.NewTicker(a.cfg.Files.PollInterval)
	defer tick.Stop()
	var bad uint64
	var u unqueued
	for {
		switch {
		case u.empty():
			a.pollAudit(tl, ts, pod, &u, &bad, lg)
		case a.retry(&u, "audit events"):
			if err := tl.Commit(); err != nil { // what the retry just queued
				a.collectError("save audit log checkpoints", err)
			}
			a.pollAudit(tl, ts, pod, &u, &bad, lg)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollAudit reads what the audit files gained and queues it; the
// checkpoints are committed only when every row is in the queue.
func (a *Agent) pollAudit(tl *tail.Tailer, ts []target, pod string, u *unqueued, bad *uint64, lg *slog.Logger) {
	recs, err := tl.Poll()
	if err != nil {
		a.collectError("read audit log files", err)
	}
	rows := make([]kube.AuditRow, 0, len(recs))
	now := a.now()
	for _, r := range recs {
		row, err := kube.ParseAuditLine([]byte(r.Text), pod, a.cfg.Kubernetes.ClusterResourceID, now)
		if err != nil {
			a.c.CollectErrors.Add(1)
			if *bad++; *bad%1000 == 1 {
				lg.Warn("audit log line skipped", slog.Any("error", err), slog.Uint64("skipped_total", *bad))
			}
			continue
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		a.queueOrKeep(u, ts, marshalRows(rows), "audit events")
	}
	if !u.empty() {
		return // not committed: retried from memory, or read again after a restart
	}
	if err := tl.Commit(); err != nil {
		a.collectError("save audit log checkpoints", err)
	}
}

// kubeletURL returns the configured kubelet URL or https://$NODE_IP:10250.
func (a *Agent) kubeletURL() (string, error) {
	if u := a.cfg.Kubernetes.KubeletURL; u != "" {
		return u, nil
	}
	ip := os.Getenv("NODE_IP")
	if ip == "" {
		return "", fmt.Errorf("kubernetes.kubeletURL is not set and NODE_IP is not in the environment (set it from status.hostIP)")
	}
	return "https://" + net.JoinHostPort(ip, DefaultKubeletPort), nil
}

// runKubelet scrapes the kubelet's /stats/summary every interval into Perf
// and InsightsMetrics rows until ctx ends.
// Pods opted out with fluentbit.io/exclude (and pods the node's pod watch
// does not know yet) are left out, unless kubernetes.disablePodMetadata.
func (a *Agent) runKubelet(ctx context.Context, ks kubeSettings, perfT, imT []target, pods *nodePods) {
	k := a.cfg.Kubernetes
	lg := a.log.With(slog.String("extension", ks.name))
	u, err := a.kubeletURL()
	if err != nil {
		a.collectError("kubelet metrics "+ks.name, err)
		return
	}
	kc, err := kube.NewKubeletClient(kube.KubeletOptions{URL: u, TokenFile: k.TokenFile, CAFile: k.CAFile,
		InsecureSkipTLSVerify: k.InsecureSkipTLSVerify, Logger: lg})
	if err != nil {
		a.collectError("kubelet metrics "+ks.name, err)
		return
	}
	defer kc.Close()
	lg.Info("collecting kubelet metrics", slog.String("kubelet_url", u), slog.Duration("interval", ks.interval))
	mo := kube.MetricsOptions{ClusterID: k.ClusterResourceID, ClusterName: k.ClusterName}
	if k.DisablePodMetadata {
		lg.Warn("kubernetes.disablePodMetadata is set: kubelet metrics of pods annotated fluentbit.io/exclude are NOT left out")
	} else {
		md, ok := pods.get(ctx, a, lg)
		if !ok {
			return
		}
		mo.Exclude = optedOut(md)
	}
	var prev *kube.Summary
	tick := time.NewTicker(ks.interval)
	defer tick.Stop()
	for {
		s, err := kc.Summary(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			a.collectError("read kubelet /stats/summary", err)
		default:
			if len(perfT) > 0 {
				recs := marshalRows(kube.PerfRows(s, prev, mo))
				a.c.PerfSamples.Add(uint64(len(recs)))
				a.enqueueAll(perfT, recs, "kubelet Perf rows")
			}
			if len(imT) > 0 {
				recs := marshalRows(kube.InsightsMetricsRows(s, mo))
				a.c.PerfSamples.Add(uint64(len(recs)))
				a.enqueueAll(imT, recs, "kubelet InsightsMetrics rows")
			}
			prev = s
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
