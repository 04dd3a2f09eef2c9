package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"custos/internal/agent/inventory"
	"custos/internal/agent/kube"
)

// Streams of the cluster agent (kubernetes.role: cluster): inventory and
// events from the API server's watches.
const (
	StreamKubePodInventory   = "Microsoft-KubePodInventory"
	StreamKubeNodeInventory  = "Microsoft-KubeNodeInventory"
	StreamKubeEvents         = "Microsoft-KubeEvents"
	StreamKubeServices       = "Microsoft-KubeServices"
	StreamContainerInventory = "Microsoft-ContainerInventory"
)

// inventoryTable maps an inventory stream to the table the collector emits.
func inventoryTable(stream string) (string, bool) {
	switch strings.ToLower(stream) {
	case strings.ToLower(StreamKubePodInventory):
		return inventory.TablePods, true
	case strings.ToLower(StreamKubeNodeInventory):
		return inventory.TableNodes, true
	case strings.ToLower(StreamKubeEvents):
		return inventory.TableEvents, true
	case strings.ToLower(StreamKubeServices):
		return inventory.TableServices, true
	case strings.ToLower(StreamContainerInventory):
		return inventory.TableContainers, true
	}
	return "", false
}

// envVarsEnabled reads the Custos setting
// dataCollectionSettings.collectEnvironmentVariables of a ContainerInsights
// extension: container environment variables go to
// ContainerInventory.EnvironmentVar only when it is true.
func envVarsEnabled(ext ExtensionSource) (bool, error) {
	if len(ext.ExtensionSettings) == 0 || string(ext.ExtensionSettings) == "null" {
		return false, nil
	}
	var raw struct {
		DataCollectionSettings *struct {
			CollectEnvironmentVariables *bool `json:"collectEnvironmentVariables"`
		} `json:"dataCollectionSettings"`
	}
	if err := json.Unmarshal(ext.ExtensionSettings, &raw); err != nil {
		return false, fmt.Errorf("extension %s: extensionSettings: %w", ext.Name, err)
	}
	d := raw.DataCollectionSettings
	return d != nil && d.CollectEnvironmentVariables != nil && *d.CollectEnvironmentVariables, nil
}

// apiClient returns a client of the API server authenticated with the
// ServiceAccount token.
func (a *Agent) apiClient() (inventory.Source, error) {
	return inventory.NewClient(a.apiClientOptions())
}

// apiClientOptions locate the API server and the ServiceAccount token and CA.
func (a *Agent) apiClientOptions() inventory.ClientOptions {
	k := a.cfg.Kubernetes
	tok, ca := k.TokenFile, k.CAFile
	if tok == "" {
		tok = kube.DefaultTokenFile
	}
	if ca == "" {
		ca = kube.DefaultCAFile
	}
	return inventory.ClientOptions{URL: k.APIServerURL, TokenFile: tok, CAFile: ca, UserAgent: "custos-agent (" + k.Role + ")"}
}

// podLookup adapts the API server's pod cache to kube.MetadataLookup.
type podLookup struct{ c *inventory.PodCache }

func (l podLookup) Pod(namespace, name string) (kube.PodMetadata, bool) {
	md, ok := l.c.Pod(namespace, name)
	if !ok {
		return kube.PodMetadata{}, false
	}
	return kube.PodMetadata{UID: md.UID, ControllerKind: md.ControllerKind, ControllerName: md.ControllerName, Labels: md.Labels,
		Annotations: md.Annotations, Images: md.Images, ContainerIDs: md.ContainerIDs}, true
}

// podMetadata starts the watch of this node's pods and waits for its first
// list, reporting every 30s that it still waits. The watch runs until ctx
// ends; wait waits for it to stop. ok is false when ctx ended or the client
// cannot be built (reported).
func (a *Agent) podMetadata(ctx context.Context, lg *slog.Logger) (md kube.MetadataLookup, wait func(), ok bool) {
	client, err := a.apiClient()
	if err != nil {
		a.collectError("pod metadata", err)
		return nil, nil, false
	}
	pc, err := inventory.NewPodCache(client, a.node, lg)
	if err != nil {
		a.collectError("pod metadata", err)
		return nil, nil, false
	}
	wait = pc.Start(ctx)
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		synced := pc.WaitSynced(wctx)
		cancel()
		switch {
		case synced:
			return podLookup{pc}, wait, true
		case ctx.Err() != nil:
			wait()
			return nil, nil, false
		}
		a.collectError("pod metadata", fmt.Errorf("the API server's pod list for node %s is not in yet; container logs wait for it (the opt-out annotation must be checked)", a.node))
	}
}

// runKubeCluster runs the cluster agent's collectors until ctx ends: the
// inventory (tables maps each table to its targets) and, when imT is set,
// Prometheus scraping of annotated pods and services.
func (a *Agent) runKubeCluster(ctx context.Context, ks kubeSettings, tables map[string][]target, imT []target, envOn bool) {
	k := a.cfg.Kubernetes
	lg := a.log.With(slog.String("extension", ks.name), slog.String("source", "inventory"))
	client, err := a.apiClient()
	if err != nil {
		a.collectError("kubernetes inventory "+ks.name, err)
		return
	}
	if envOn {
		lg.Warn("container environment variables are collected into ContainerInventory.EnvironmentVar (the rule sets collectEnvironmentVariables); " +
			"values from Secrets and ConfigMaps, containers with AZMON_COLLECT_ENV=false and pods annotated fluentbit.io/exclude are left out")
	}
	col, err := inventory.New(inventory.Options{Source: client, ClusterID: k.ClusterResourceID, ClusterName: k.ClusterName,
		ResourceID: a.cfg.ResourceID, Snapshot: ks.interval, CollectEnvVars: envOn, Namespaces: ks.filter.Allows, Now: a.now, Logger: lg,
		ResourceCounters: len(tables[inventory.TablePerf]) > 0,
		Emit: func(table string, recs [][]byte) error {
			ts := tables[table]
			if len(ts) == 0 {
				return nil
			}
			if a.enqueueAll(ts, recs, table+" rows") {
				a.c.PerfSamples.Add(uint64(len(recs)))
			}
			return nil
		}})
	if err != nil {
		a.collectError("kubernetes inventory "+ks.name, err)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if len(imT) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); a.runPrometheus(ctx, ks, col, imT) }()
	}
	lg.Info("collecting kubernetes inventory", slog.Duration("snapshot_interval", ks.interval), slog.Bool("environment_variables", envOn))
	if err := col.Run(ctx); err != nil {
		a.collectError("kubernetes inventory "+ks.name, err)
	}
}

// runPrometheus scrapes the annotated pods and services every interval into
// InsightsMetrics (Namespace "prometheus") until ctx ends.
func (a *Agent) runPrometheus(ctx context.Context, ks kubeSettings, col *inventory.Collector, ts []target) {
	lg := a.log.With(slog.String("extension", ks.name), slog.String("source", "prometheus"))
	// https targets are verified against the system CAs plus the cluster's
	// CA (kubernetes.caFile, by default the ServiceAccount's ca.crt), which
	// signs in-cluster serving certificates.
	so := kube.ScrapeOptions{}
	caFile := a.apiClientOptions().CAFile
	if pool, err := kube.LoadCAPool(caFile); err != nil {
		lg.Warn("https scrape targets are verified against the system CAs only", slog.Any("error", err))
	} else {
		so.RootCAs = pool
	}
	sc := kube.NewScraper(so)
	defer sc.Close()
	if !col.WaitSynced(ctx) {
		return
	}
	lg.Info("scraping annotated pods and services", slog.Duration("interval", ks.interval))
	reported := map[string]string{}
	tick := time.NewTicker(ks.interval)
	defer tick.Stop()
	for {
		targets, skipped := col.ScrapeTargets()
		for obj, why := range skipped {
			if reported[obj] != why {
				reported[obj] = why
				lg.Warn("annotated for Prometheus scraping but not scraped", slog.String("object", obj), slog.String("reason", why))
			}
		}
		a.scrapeAll(ctx, lg, sc, targets, ts)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scrapeConcurrency bounds the scrapes in flight.
const scrapeConcurrency = 8

func (a *Agent) scrapeAll(ctx context.Context, lg *slog.Logger, sc *kube.Scraper, targets []inventory.ScrapeTarget, ts []target) {
	sem := make(chan struct{}, scrapeConcurrency)
	var wg sync.WaitGroup
	for _, t := range targets {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			samples, truncated, err := sc.Scrape(ctx, t.URL)
			if err != nil {
				if ctx.Err() == nil {
					a.collectError("prometheus scrape of "+t.Kind+" "+t.Namespace+"/"+t.Name, err)
				}
				return
			}
			if truncated {
				lg.Warn("scrape cut at the sample limit", slog.String("url", t.URL), slog.Int("limit", kube.DefaultMaxScrapeSamples))
			}
			tags := map[string]string{"namespace": t.Namespace, "url": t.URL}
			computer := a.node
			if t.Kind == "pod" {
				tags["pod_name"] = t.Name
				if t.Node != "" {
					computer = t.Node
				}
			} else {
				tags["service_name"] = t.Name
			}
			recs := marshalRows(kube.PrometheusRows(samples, tags, computer, a.cfg.ResourceID))
			a.c.PerfSamples.Add(uint64(len(recs)))
			a.enqueueAll(ts, recs, "prometheus InsightsMetrics rows")
		}()
	}
	wg.Wait()
}
