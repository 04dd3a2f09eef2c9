// Package e2e holds Custos's black-box system tests and the harness they
// share with the data-path benchmarks under bench/.
//
// The harness drives the built `custos` binary as a child process — start on
// a fixed loopback port, SIGKILL, SIGTERM, restart on the same data
// directory — and talks to it only over HTTPS with the Azure SDK for Go
// (azidentity, monitor/ingestion/azlogs, monitor/query/azlogs), raw ARM
// requests and the CLI, the way a user does.
//
// The bootstrap admin holds Owner at "/", which (as in Azure) grants no data
// actions and, in just-in-time mode (the server's default), no query access;
// it may not grant itself data access either. Client.GrantDataRoles — the one
// place tests get data access — has the admin create a data service principal
// with "Monitoring Metrics Publisher" and "Log Analytics Reader" on the
// subscription, and routes the client's ingestion and query calls through it.
//
// The tests (go test ./e2e/...) build the binary once in TestMain. They cover
// crash safety under SIGKILL with concurrent ingestion (TestCrashSafety),
// encryption at rest — no plaintext of ingested data in any file of the data
// directory, while running, during the shutdown flush and after it
// (TestEncryptionAtRest) —, tamper detection in part files and WAL segments
// and parts moved between tables (TestTamperedPart, TestTamperedWAL,
// TestMovedPart), a wrong, missing or unsafe platform key failing closed
// (TestPlatformKeyFailsClosed), kills during background merges
// (TestCrashDuringMerge), a dropped and re-created table never getting its
// old rows back (TestDroppedTableStaysDropped), no data-directory file or
// directory open to other users (TestDataDirPermissions), and a CLI smoke flow
// (TestCLISmoke). Set
// E2E_SEED to replay a crash schedule and E2E_CRASH_ROUNDS to change its
// length; -short skips everything that starts the binary.
//
// e2e imports only what a client of the server would (the Azure SDK, the
// binary); it must not import any custos/internal package.
package e2e
