# frozen_string_literal: true

# Benchmark 1's faye-online servers: the same Faye as bench/plain_faye.ru
# with faye-online, set up by BENCH_SETUP:
#   embedded       the embedded default: memory store, SQLite (a scratch
#                  file, BENCH_SQLITE), faye-online's memory engine;
#   redis_mariadb  Redis (BENCH_REDIS_URL) and MariaDB (BENCH_DATABASE_URL),
#                  with a memory engine, so that the difference is presence
#                  alone (benchmark 7 measures the engine on Redis).
# BENCH_ENGINE picks the memory engine: memory (faye-online's, the
# default) or faye_memory (Faye's own).
require "faye"
require "faye-online"

Faye::WebSocket.load_adapter("thin")
engine = ENV.fetch("BENCH_ENGINE", "memory").to_sym
options = { timeout: 25, engine: engine, logger: Logger.new(File::NULL) }
options = case ENV.fetch("BENCH_SETUP", "redis_mariadb")
          when "embedded" then options.merge(database_url: "sqlite3:#{ENV.fetch("BENCH_SQLITE")}")
          else options.merge(redis_url: ENV.fetch("BENCH_REDIS_URL"), namespace: "bench_load",
                             database_url: ENV.fetch("BENCH_DATABASE_URL"))
          end
run FayeOnline.get_server(**options)
