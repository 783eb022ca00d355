-- The in-process call a plugin was making when the server stopped without
-- returning from it (a segfault or abort in the plugin), as the next start
-- found it: the call's kind and when it started. Kept with the decision
-- made about the plugin for it, so that every later start still shows it.
ALTER TABLE plugin_policies ADD COLUMN interrupted_call TEXT;
ALTER TABLE plugin_policies ADD COLUMN interrupted_at TEXT;
