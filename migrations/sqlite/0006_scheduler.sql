-- The scheduler: every task's next due time, and a record of every run.
-- A run row is also the claim on its tick: UNIQUE (task, scheduled_for)
-- lets exactly one of several servers sharing the database insert it.

CREATE TABLE scheduled_tasks (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    schedule TEXT NOT NULL,
    next_run_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE task_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    scheduled_for TEXT NOT NULL,
    runner TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL,
    output TEXT,
    error TEXT,
    UNIQUE (task, scheduled_for)
);
CREATE INDEX task_runs_by_task ON task_runs(task, id);
CREATE INDEX task_runs_running ON task_runs(task) WHERE outcome = 'running';
