// Command bloom measures what the store's token bloom filters cost a server:
// the Go heap a store of many parts holds once open (after a GC), and the
// needle query (`where Message has "<rare term>" | count`) in a fresh
// process — its first run, which reads the bloom sections (cold cache; the
// files may be in the OS page cache), and the runs after it (warm), wall and
// CPU time each. It reuses a bench/kql data directory and writes nothing to
// it (no background flush or merge) unless asked to upgrade its parts.
//
//	go run ./bench/bloom -data-dir /var/tmp/kqlb10m -runs 5
//	cp -a /var/tmp/kqlb10m /var/tmp/copy && go run ./bench/bloom -data-dir /var/tmp/copy -upgrade
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/kql"
	"custos/internal/store"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

func main() {
	dir := flag.String("data-dir", "/var/tmp/kqlb10m", "a bench/kql data directory")
	ws := flag.String("workspace", "3f6c1b7e-2a9d-4e8f-b1c5-0d7a9e6f4c21", "workspace ID")
	table := flag.String("table", "Logs_CL", "table")
	term := flag.String("term", "quokkaquasar", "the needle")
	runs := flag.Int("runs", 5, "runs after the first")
	upgrade := flag.Bool("upgrade", false, "rewrite the data directory's version-1 parts with bloom sections (store.DB.UpgradeParts) and exit; use on a copy")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the first (cold) query")
	flag.Parse()
	profile = *cpuProfile
	if *upgrade {
		if err := upgradeParts(*dir); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*dir, *ws, *table, *term, *runs); err != nil {
		log.Fatal(err)
	}
}

var profile string

func upgradeParts(dir string) error {
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		return err
	}
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: key, DisableBackground: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	t0, c0 := time.Now(), cpuTime()
	n, err := db.UpgradeParts(context.Background())
	fmt.Printf("upgraded %d parts in %v wall, %v CPU\n", n, time.Since(t0).Round(time.Millisecond), (cpuTime() - c0).Round(time.Millisecond))
	return errors.Join(err, db.Close())
}

func run(dir, ws, table, term string, runs int) error {
	ctx := context.Background()
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		return err
	}
	h0 := heapMB()
	t0, c0 := time.Now(), cpuTime()
	db, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: key, DisableBackground: true,
		Logger: slog.New(slog.DiscardHandler), ReadCacheBytes: 256 << 20})
	if err != nil {
		return err
	}
	defer db.Close()
	q, err := db.Querier(ctx, store.TableRef{WorkspaceID: ws, Table: table}, store.AllTime)
	if err != nil {
		return err
	}
	cat := kql.MapCatalog{table: q.Schema()}
	q.Close()
	fmt.Printf("open: %v wall, %v CPU; Go heap after GC: %.1f MB before open, %.1f MB open\n",
		time.Since(t0).Round(time.Millisecond), (cpuTime() - c0).Round(time.Millisecond), h0, heapMB())
	eng := engine.New(engine.Options{})
	req := engine.Request{Query: fmt.Sprintf("%s | where Message has %q | count", table, term), Tables: cat, Source: db,
		WorkspaceID: ws, Now: time.Now()}
	for i := range runs + 1 {
		var pf *os.File
		if i == 0 && profile != "" {
			if pf, err = os.Create(profile); err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
		}
		t0, c0 := time.Now(), cpuTime()
		res, err := eng.Query(ctx, req)
		if pf != nil {
			pprof.StopCPUProfile()
			pf.Close()
		}
		if err != nil {
			return err
		}
		wall, cpu := time.Since(t0), cpuTime()-c0
		n := int64(-1)
		if len(res.Tables) == 1 && len(res.Tables[0].Batches) > 0 && len(res.Tables[0].Batches[0].Cols) > 0 {
			n = res.Tables[0].Batches[0].Cols[0].Int[0]
		}
		what := "warm"
		if i == 0 {
			what = "cold"
		}
		fmt.Printf("%s: %v wall, %v CPU, count %d, %d rows and %d bytes scanned\n", what,
			wall.Round(100*time.Microsecond), cpu.Round(100*time.Microsecond), n, res.Stats.RowsScanned, res.Stats.BytesScanned)
	}
	fmt.Printf("Go heap after the queries: %.1f MB\n", heapMB())
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	return nil
}
