# frozen_string_literal: true

# Benchmark 6's server: faye-online on the embedded default (memory and
# SQLite), with a secret and a server-only channel for the app's
# publications (bench/publish.rb).
require "faye"
require "faye-online"

run FayeOnline.get_server(store: :memory, database_url: ENV.fetch("BENCH_DATABASE_URL"), timeout: 25,
                          secret: ENV.fetch("BENCH_SECRET"), server_publish: ["/broadcast/**"],
                          logger: Logger.new(File::NULL))
