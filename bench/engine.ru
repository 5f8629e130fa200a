# frozen_string_literal: true

# Benchmark 7's server: faye-online on SQLite with Faye's engine as
# BENCH_ENGINE says (memory, or redis on BENCH_REDIS_URL in namespace
# BENCH_NAMESPACE, shared by every process of a run).
require "faye"
require "faye-online"

Faye::WebSocket.load_adapter("thin")
options = { database_url: ENV.fetch("BENCH_DATABASE_URL"), timeout: 25, logger: Logger.new(File::NULL) }
if ENV["BENCH_ENGINE"] == "redis"
  options.merge!(redis_url: ENV.fetch("BENCH_REDIS_URL"), namespace: ENV.fetch("BENCH_NAMESPACE"), engine: :redis)
else
  options[:store] = :memory
end
run FayeOnline.get_server(**options)
