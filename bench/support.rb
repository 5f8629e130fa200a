# frozen_string_literal: true

# Shared helpers of the benchmarks: where Redis, MariaDB and PostgreSQL are, timing and
# statistics. Everything talks to loopback only.
require "etc"
require "fileutils"
require "json"
require "mysql2"
require "redis"
require "uri"

module Bench
  REDIS_URL = ENV.fetch("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
  MYSQL = { host: "127.0.0.1", port: 3306, username: "root" }.freeze
  ROOT = File.expand_path("..", __dir__)

  module_function

  def mysql_url(database)
    "mysql2://root@127.0.0.1:3306/#{database}"
  end

  # Drops and creates a database, then runs faye-online's migrations on it.
  def fresh_database(name)
    client = Mysql2::Client.new(**MYSQL)
    client.query("DROP DATABASE IF EXISTS `#{name}`")
    client.query("CREATE DATABASE `#{name}` CHARACTER SET utf8mb4")
    client.close
    require "faye_online/migrator"
    FayeOnline::Migrator.migrate!(mysql_url(name))
    mysql_url(name)
  end

  POSTGRES_URL = ENV.fetch("BENCH_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432")

  # The same for PostgreSQL: a fresh database, migrated.
  def fresh_postgres_database(name)
    require "pg"
    uri = URI(POSTGRES_URL)
    client = PG.connect(host: uri.host, port: uri.port, user: uri.user, password: uri.password, dbname: "postgres")
    client.exec("SET client_min_messages TO warning")
    client.exec("DROP DATABASE IF EXISTS #{client.quote_ident(name)} WITH (FORCE)")
    client.exec("CREATE DATABASE #{client.quote_ident(name)} ENCODING 'UTF8' TEMPLATE template0")
    client.close
    require "faye_online/migrator"
    FayeOnline::Migrator.migrate!("#{POSTGRES_URL}/#{name}")
    "#{POSTGRES_URL}/#{name}"
  end

  # Deletes the keys of a namespace (never the whole database).
  def clear_namespace(redis, namespace)
    keys = redis.scan_each(match: "/#{namespace}/*").to_a + redis.scan_each(match: "#{namespace}/*").to_a
    keys.each_slice(1000) { |slice| redis.del(*slice) }
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # CPU seconds (user and system) that the MariaDB server has used, or nil
  # when it cannot be read (not on this host).
  def mariadb_cpu_seconds
    pid = `pidof mariadbd 2>/dev/null`.split.first || `pidof mysqld 2>/dev/null`.split.first
    pid && cpu_seconds(pid)
  end

  # CPU seconds (user and system, all threads) that process +pid+ has
  # used, from /proc; nil when it cannot be read.
  def cpu_seconds(pid)
    fields = File.read("/proc/#{pid}/stat").split(")").last.split
    (fields[11].to_i + fields[12].to_i) / Float(Etc.sysconf(Etc::SC_CLK_TCK))
  rescue SystemCallError
    nil
  end

  # The Redis server's own process id (on this host), or nil.
  def redis_pid(redis)
    pid = redis.info("server")["process_id"].to_i
    pid.positive? && File.exist?("/proc/#{pid}/stat") ? pid : nil
  end

  # Seconds the block took.
  def time
    t = now
    yield
    now - t
  end

  def percentile(values, p)
    return 0.0 if values.empty?

    sorted = values.sort
    sorted[[(p / 100.0 * sorted.size).ceil - 1, 0].max]
  end

  def median(values)
    percentile(values, 50)
  end

  def us(seconds)
    format("%.1f", seconds * 1e6)
  end

  def ms(seconds)
    format("%.2f", seconds * 1e3)
  end

  # A result line for the summary: the figures print as a table at the end.
  def result(name, figure, target: nil, met: nil)
    { name: name, figure: figure, target: target, met: met }
  end
end
