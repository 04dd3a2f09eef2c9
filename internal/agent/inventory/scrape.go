package inventory

import (
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Prometheus scrape annotations, as Container insights and the Prometheus
// community's kubernetes_sd examples read them from pods and services.
const (
	AnnotationScrape = "prometheus.io/scrape"
	AnnotationPort   = "prometheus.io/port"
	AnnotationPath   = "prometheus.io/path"
	AnnotationScheme = "prometheus.io/scheme"
)

// ScrapeTarget is one endpoint to scrape.
type ScrapeTarget struct {
	URL       string
	Kind      string // "pod" or "service"
	Namespace string
	Name      string
	Node      string // pods: the node they run on
}

// ScrapeTargets lists the pods (Running, with an IP, not opted out) and
// services (with a cluster IP) annotated prometheus.io/scrape: "true" in
// namespaces the filter allows, sorted by URL. The port is
// prometheus.io/port, else the first declared (container or service) port;
// the path prometheus.io/path (default /metrics); the scheme
// prometheus.io/scheme (http or https, default http). Objects with an
// unusable annotation are skipped and returned in skipped with the reason.
func (c *Collector) ScrapeTargets() (targets []ScrapeTarget, skipped map[string]string) {
	skipped = map[string]string{}
	for _, p := range listAs[*corev1.Pod](c.pods) {
		if !scrapeOn(p.Annotations) || !c.allows(p.Namespace) || OptedOut(p) || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			continue
		}
		var declared int32
		for _, ct := range p.Spec.Containers {
			if len(ct.Ports) > 0 {
				declared = ct.Ports[0].ContainerPort
				break
			}
		}
		u, why := scrapeURL(p.Annotations, p.Status.PodIP, declared)
		if why != "" {
			skipped["pod "+p.Namespace+"/"+p.Name] = why
			continue
		}
		targets = append(targets, ScrapeTarget{URL: u, Kind: "pod", Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName})
	}
	for _, s := range listAs[*corev1.Service](c.svcs) {
		if !scrapeOn(s.Annotations) || !c.allows(s.Namespace) {
			continue
		}
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone {
			skipped["service "+s.Namespace+"/"+s.Name] = "no cluster IP (headless)"
			continue
		}
		var declared int32
		if len(s.Spec.Ports) > 0 {
			declared = s.Spec.Ports[0].Port
		}
		u, why := scrapeURL(s.Annotations, ip, declared)
		if why != "" {
			skipped["service "+s.Namespace+"/"+s.Name] = why
			continue
		}
		targets = append(targets, ScrapeTarget{URL: u, Kind: "service", Namespace: s.Namespace, Name: s.Name})
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].URL < targets[j].URL })
	return targets, skipped
}

func scrapeOn(a map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(a[AnnotationScrape]), "true")
}

func scrapeURL(a map[string]string, ip string, declared int32) (string, string) {
	scheme := strings.ToLower(strings.TrimSpace(a[AnnotationScheme]))
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return "", "prometheus.io/scheme must be http or https"
	}
	port := int(declared)
	if v := strings.TrimSpace(a[AnnotationPort]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return "", "prometheus.io/port is not a port number"
		}
		port = n
	}
	if port == 0 {
		return "", "no prometheus.io/port and no declared port"
	}
	path := strings.TrimSpace(a[AnnotationPath])
	if path == "" {
		path = "/metrics"
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n#") {
		return "", "prometheus.io/path must be an absolute path"
	}
	return scheme + "://" + net.JoinHostPort(ip, strconv.Itoa(port)) + path, ""
}
