# frozen_string_literal: true

module FayeOnlineSpec
  # The deployments every integration spec runs against. Each gets its own
  # database for this test run, migrated once with FayeOnline::Migrator.
  class Configuration
    attr_reader :name

    def initialize(name)
      @name = name
      @migrated = false
    end

    def redis?
      false
    end

    def mariadb?
      false
    end

    def postgresql?
      false
    end

    # Migrates on first use; empties the tables for a new example group.
    def prepare!
      unless @migrated
        require "faye_online/migrator"
        create_database
        FayeOnline::Migrator.migrate!(database_url)
        @migrated = true
      end
      sql.truncate_all!
    end

    def sql
      @sql ||= SqlDatabase.open(database_url)
    end

    # The environment for spec/fixtures/faye.ru: the variables the library
    # reads (FayeOnline::Configuration::ENVIRONMENT; nil removes one, "" is
    # unset), and the options in code as FAYE_ONLINE_TEST_OPTIONS (with
    # +more+ as they are given, such as webhook_url:).
    def server_env(namespace:, timeout: 25, gc: 5, secret: nil, dashboard: nil, full_lists: true, demo: false, **more)
      options = { store: store, timeout: timeout, gc: gc, **more }
      options[:full_lists] = false unless full_lists
      options[:demo] = true if demo
      { "REDIS_URL" => redis_url, "DATABASE_URL" => database_url, "FAYE_ONLINE_NAMESPACE" => namespace,
        "FAYE_ONLINE_SECRET" => secret.to_s, "FAYE_ONLINE_DASHBOARD_TOKEN" => dashboard.to_s,
        "FAYE_ONLINE_TEST_OPTIONS" => JSON.generate(options) }
    end

    # The options for FayeOnline.configure in the test process.
    def query_options(namespace:)
      options = { store: store, namespace: namespace, database_url: database_url }
      options[:redis_url] = redis_url if redis_url
      options
    end

    def redis_space(_namespace)
      nil
    end

    def cleanup!
      @sql&.close
      @sql = nil
    end

    def to_s
      name
    end
  end

  # Redis for the hot state and an SQL server for the records, in a
  # database of this run's own: <the base URL's name>_<pid>, created at
  # first use and dropped at the end. Subclasses name the server.
  class RedisSqlConfiguration < Configuration
    DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

    # +variable+ names the base URL (+default+ when unset); +sql+ is the
    # SqlDatabase class that creates and drops databases there.
    def initialize(name, variable:, default:, sql:)
      super(name)
      base = ENV.fetch(variable, "").then { |u| u.empty? ? default : u }
      uri = URI(base)
      uri.path = "/#{uri.path.delete_prefix('/')}_#{Process.pid}"
      @database_url = uri.to_s
      @redis_url = ENV.fetch("FAYE_ONLINE_TEST_REDIS_URL", "").then { |u| u.empty? ? DEFAULT_REDIS_URL : u }
      @sql_class = sql
    end

    attr_reader :database_url, :redis_url

    def store
      :redis
    end

    def redis?
      true
    end

    def redis_space(namespace)
      RedisSpace.new(redis_url, namespace)
    end

    def create_database
      @sql_class.create_database(database_url)
    end

    def cleanup!
      super
      @sql_class.drop_database(database_url) if @migrated && !ENV["FAYE_ONLINE_TEST_KEEP_DATABASES"]
    end
  end

  # Redis for the hot state, MariaDB for the records: the production shape.
  class RedisMariadbConfiguration < RedisSqlConfiguration
    DEFAULT_DATABASE_URL = "mysql2://root@127.0.0.1:3306/faye_online_test"

    def initialize
      super("Redis + MariaDB", variable: "FAYE_ONLINE_TEST_DATABASE_URL", default: DEFAULT_DATABASE_URL,
                               sql: SqlDatabase::Mysql)
    end

    def mariadb?
      true
    end
  end

  # Redis for the hot state, PostgreSQL for the records: the shape of most
  # Rails sites.
  class RedisPostgresqlConfiguration < RedisSqlConfiguration
    DEFAULT_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.1:5432/faye_online_test"

    def initialize
      super("Redis + PostgreSQL", variable: "FAYE_ONLINE_TEST_POSTGRES_DATABASE_URL", default: DEFAULT_DATABASE_URL,
                                  sql: SqlDatabase::Postgres)
    end

    def postgresql?
      true
    end
  end

  # The embedded default: state in the server's memory, records in SQLite.
  class MemorySqliteConfiguration < Configuration
    def initialize
      super("memory + SQLite")
      @path = FayeOnlineSpec.tmp_path("test-db", "faye_online_#{Process.pid}.sqlite3")
    end

    def database_url
      "sqlite3:#{@path}"
    end

    def redis_url
      nil
    end

    def store
      :memory
    end

    def create_database
      FileUtils.mkdir_p(File.dirname(@path))
      remove_files_of_dead_runs
      FileUtils.rm_f([@path, "#{@path}-wal", "#{@path}-shm", "#{@path}-journal"])
    end

    # A run that crashed left its database behind; its pid tells it is gone.
    def remove_files_of_dead_runs
      Dir[File.join(File.dirname(@path), "faye_online_*.sqlite3*")].each do |file|
        pid = File.basename(file)[/\Afaye_online_(\d+)\.sqlite3/, 1].to_i
        next if pid.zero? || pid == Process.pid || process_alive?(pid)

        FileUtils.rm_f(file)
      end
    end

    def process_alive?(pid)
      Process.kill(0, pid)
      true
    rescue Errno::ESRCH
      false
    rescue Errno::EPERM
      true
    end

    def cleanup!
      super
      return if ENV["FAYE_ONLINE_TEST_KEEP_DATABASES"]

      FileUtils.rm_f([@path, "#{@path}-wal", "#{@path}-shm", "#{@path}-journal"])
    end
  end

  def self.configurations
    @configurations ||= [RedisMariadbConfiguration.new, RedisPostgresqlConfiguration.new,
                         MemorySqliteConfiguration.new]
  end
end

RSpec.configure do |config|
  config.after(:suite) do
    FayeOnlineSpec::ServerProcess.running.dup.each(&:stop)
    FayeOnlineSpec.configurations.each(&:cleanup!)
  end
end
