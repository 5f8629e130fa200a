# frozen_string_literal: true

# Benchmark 1's server (a): Faye alone, as a site without faye-online runs it.
require "faye"

Faye::WebSocket.load_adapter("thin")
run Faye::RackAdapter.new(mount: "/faye", timeout: 25)
