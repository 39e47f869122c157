package sqlite

// schema is the embedded store's schema, one statement list per version.
// Open applies the versions the database has not seen (PRAGMA user_version)
// in one transaction each. Versions are only ever appended.
var schema = [][]string{
	1: {
		`CREATE TABLE spans (
			trace_id       TEXT    NOT NULL,
			span_id        TEXT    NOT NULL,
			parent_span_id TEXT    NOT NULL,
			service        TEXT    NOT NULL,
			name           TEXT    NOT NULL,
			kind           TEXT    NOT NULL,
			start_ns       INTEGER NOT NULL,
			duration_ns    INTEGER NOT NULL,
			status_code    TEXT    NOT NULL,
			status_msg     TEXT    NOT NULL,
			request_id     TEXT    NOT NULL,
			attributes     TEXT,
			PRIMARY KEY (trace_id, span_id)
		) WITHOUT ROWID`,
		`CREATE INDEX spans_request_id ON spans (request_id) WHERE request_id <> ''`,
		`CREATE INDEX spans_service_start ON spans (service, start_ns)`,
		`CREATE INDEX spans_duration ON spans (duration_ns)`,
		`CREATE INDEX spans_start ON spans (start_ns)`,
		`CREATE TABLE operations (
			service TEXT NOT NULL,
			name    TEXT NOT NULL,
			kind    TEXT NOT NULL,
			PRIMARY KEY (service, name, kind)
		) WITHOUT ROWID`,
		`CREATE TABLE rollups (
			minute       INTEGER NOT NULL,
			service      TEXT    NOT NULL,
			direction    TEXT    NOT NULL,
			peer         TEXT    NOT NULL,
			route        TEXT    NOT NULL,
			method       TEXT    NOT NULL,
			status_class TEXT    NOT NULL,
			source       TEXT    NOT NULL,
			count        INTEGER NOT NULL,
			total        TEXT    NOT NULL,
			upstream     TEXT    NOT NULL,
			overhead     TEXT    NOT NULL,
			PRIMARY KEY (minute, service, direction, peer, route, method, status_class, source)
		) WITHOUT ROWID`,
		`CREATE INDEX rollups_service_minute ON rollups (service, minute)`,
		`CREATE TABLE services (
			name          TEXT    PRIMARY KEY,
			first_seen_ns INTEGER NOT NULL,
			last_seen_ns  INTEGER NOT NULL,
			has_proxy     INTEGER NOT NULL
		) WITHOUT ROWID`,
		`CREATE TABLE edges (
			caller        TEXT    NOT NULL,
			callee        TEXT    NOT NULL,
			first_seen_ns INTEGER NOT NULL,
			last_seen_ns  INTEGER NOT NULL,
			PRIMARY KEY (caller, callee)
		) WITHOUT ROWID`,
	},
	2: {
		`CREATE TABLE rollup_generations (
			service  TEXT    NOT NULL,
			period_s INTEGER NOT NULL,
			start    INTEGER NOT NULL,
			gen      INTEGER NOT NULL,
			PRIMARY KEY (service, period_s, start)
		) WITHOUT ROWID`,
		`CREATE INDEX rollup_generations_start ON rollup_generations (start)`,
		`CREATE TABLE rollup_compactions (
			service   TEXT    NOT NULL,
			direction TEXT    NOT NULL,
			period_s  INTEGER NOT NULL,
			start     INTEGER NOT NULL,
			gen       INTEGER NOT NULL,
			count     INTEGER NOT NULL,
			total     TEXT    NOT NULL,
			upstream  TEXT    NOT NULL,
			overhead  TEXT    NOT NULL,
			PRIMARY KEY (service, period_s, start, direction)
		) WITHOUT ROWID`,
		`CREATE INDEX rollup_compactions_start ON rollup_compactions (start)`,
	},
	// Compactions built in the background and request counts per status
	// class in compactions (migrations/0003_compactor.up.sql): built is the
	// generation whose compactions are stored, so a period whose gen differs
	// is dirty. Compactions are a cache: the table is made again, its small
	// columns before the histograms.
	3: {
		`DROP TABLE rollup_compactions`,
		`CREATE TABLE rollup_compactions (
			service   TEXT    NOT NULL,
			direction TEXT    NOT NULL,
			period_s  INTEGER NOT NULL,
			start     INTEGER NOT NULL,
			gen       INTEGER NOT NULL,
			count     INTEGER NOT NULL,
			rollups   INTEGER NOT NULL,
			by_class  TEXT    NOT NULL,
			total     TEXT    NOT NULL,
			upstream  TEXT    NOT NULL,
			overhead  TEXT    NOT NULL,
			PRIMARY KEY (service, period_s, start, direction)
		) WITHOUT ROWID`,
		`CREATE INDEX rollup_compactions_start ON rollup_compactions (start)`,
		// Keys and counts without the histograms: a query reads them for
		// every compaction of its window, and the histograms of those it
		// has not cached.
		`CREATE INDEX rollup_compactions_keys ON rollup_compactions (service, period_s, start, direction, gen, count, rollups, by_class)`,
		`ALTER TABLE rollup_generations ADD COLUMN built INTEGER NOT NULL DEFAULT 0`,
		`CREATE INDEX rollup_generations_dirty ON rollup_generations (start) WHERE built <> gen`,
	},
}
