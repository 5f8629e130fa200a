# frozen_string_literal: true

# Benchmark 1's server (b): the same Faye with faye-online on Redis and
# MariaDB (BENCH_REDIS_URL, BENCH_DATABASE_URL, from bench/cost_to_faye.rb).
# Faye's engine stays its memory engine, as in server (a), so that the
# difference is presence alone; benchmark 7 measures the engine on Redis.
require "faye"
require "faye-online"

Faye::WebSocket.load_adapter("thin")
run FayeOnline.get_server(redis_url: ENV.fetch("BENCH_REDIS_URL"), namespace: "bench_load",
                          database_url: ENV.fetch("BENCH_DATABASE_URL"), timeout: 25, engine: :memory,
                          logger: Logger.new(File::NULL))
