# frozen_string_literal: true

# Development server for this checkout: the embedded defaults (process memory
# for who is online, db/faye_online.sqlite3 for the records), with the demo
# classroom at /. bin/dev builds the extension, migrates the database, sets
# a development dashboard token (FAYE_ONLINE_DASHBOARD_TOKEN) and starts
# this with thin.
$LOAD_PATH.unshift File.expand_path("lib", __dir__)
require "faye_online"

Faye::WebSocket.load_adapter("thin")

$faye_server = FayeOnline.get_server(demo: true)
run $faye_server
