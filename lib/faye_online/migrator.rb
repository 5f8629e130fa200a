# frozen_string_literal: true

require_relative "database"

module FayeOnline
  # Runs faye-online's ActiveRecord migrations (db/migrate, the one source of
  # truth for the tables) against a database URL, without Rails. It works on a
  # private connection handler, so an application's own ActiveRecord
  # connection is neither used nor replaced, and it disconnects when done.
  #
  #   FayeOnline::Migrator.migrate!("mysql2://root@127.0.0.1:3306/app")
  #   FayeOnline::Migrator.migrate!(FayeOnline::Database.resolve)
  module Migrator
    MIGRATIONS_DIR = File.expand_path("../../db/migrate", __dir__)

    # MySQL's "Unknown database" error.
    UNKNOWN_DATABASE = 1049

    module_function

    # Creates the database when it does not exist (the MySQL or PostgreSQL
    # database, or the directory of the SQLite file), then applies the pending migrations. A
    # relative SQLite path is taken against +root+, as the server takes it.
    def migrate!(url, verbose: false, root: Dir.pwd)
      config = connection_config(url, root: root)
      prepare_database(config)
      with_connection(config) do
        with_verbosity(verbose) { migration_context.migrate }
      end
      nil
    end

    # As migrate!, in a child process when ActiveRecord is not loaded here
    # yet (a Faye server started from a rackup file): loading it would
    # change how every Hash, Array and String of the process becomes JSON
    # (Active Support's encoder, several times slower than the json gem's),
    # and so the cost of every message Faye sends. The child's error, if
    # any, is raised here.
    def migrate_apart!(url, root: Dir.pwd)
      return migrate!(url, root: root) if defined?(::ActiveRecord::Base) || !Process.respond_to?(:fork)

      reader, writer = IO.pipe
      pid = fork do
        reader.close
        status = 0
        begin
          migrate!(url, root: root)
        rescue Exception => e # rubocop:disable Lint/RescueException -- all of it goes back to the parent
          writer.write("#{e.class}: #{e.message}")
          status = 1
        ensure
          writer.close
        end
        exit!(status) # the parent's at_exit handlers are not the child's
      end
      writer.close
      failure = reader.read
      status = wait_for(pid)
      pid = nil
      return nil if failure.empty? && (status.nil? || status.success?)

      raise Error, "faye-online: migrating #{Database.redact(url)} failed: #{failure.empty? ? status.inspect : failure}"
    ensure
      reader&.close unless reader&.closed?
      writer&.close unless writer&.closed?
      # Interrupted before the child was waited for: it is not left behind.
      if pid
        Process.kill("TERM", pid) rescue nil # rubocop:disable Style/RescueModifier
        wait_for(pid)
      end
    end

    # The child's status; nil when something else in the process reaped it
    # (a SIGCHLD handler), its error having come through the pipe.
    def wait_for(pid)
      Process.wait2(pid).last
    rescue Errno::ECHILD
      nil
    end

    # True when the database at +url+ lacks some of faye-online's migrations.
    def pending?(url, root: Dir.pwd)
      config = connection_config(url, root: root)
      prepare_database(config)
      with_connection(config) { migration_context.needs_migration? }
    end

    # The ActiveRecord configuration for a mysql2://, postgresql:// or
    # sqlite3: URL, with
    # faye-online's migrations.
    def connection_config(url, root: Dir.pwd)
      Database.active_record_config(url, root: root, migrations_paths: [MIGRATIONS_DIR])
    end

    def prepare_database(config)
      if config[:adapter] == "sqlite3"
        return if config[:database] == ":memory:"

        require "fileutils"
        FileUtils.mkdir_p(File.dirname(config[:database]))
      elsif config[:adapter] == "postgresql"
        create_postgres_database(config)
      else
        create_mysql_database(config)
      end
    end

    # As for MySQL: the database is connected to first, and created (in
    # UTF8, so that every name fits) only when PostgreSQL says it does not
    # exist, from the server's maintenance database.
    def create_postgres_database(config)
      require "pg"
      options = { host: config[:host], port: config[:port], user: config[:username] || config[:user],
                  password: config[:password], sslmode: config[:sslmode], connect_timeout: 5 }.compact
      begin
        PG.connect(**options, dbname: config[:database]).close
      rescue PG::ConnectionBad => e
        raise unless e.message.match?(/database "[^"]*" does not exist/)

        client = PG.connect(**options, dbname: config.fetch(:maintenance_db, "postgres"))
        begin
          client.exec("CREATE DATABASE #{client.quote_ident(config[:database])} ENCODING 'UTF8' TEMPLATE template0")
        rescue PG::DuplicateDatabase
          nil # made by another process meanwhile
        ensure
          client.close
        end
      end
    end

    # Connects to the database first, so that an account allowed to use its
    # database but not to create databases still works; creates it only when
    # MySQL says it does not exist.
    def create_mysql_database(config)
      require "mysql2"
      options = config.slice(:host, :port, :username, :password, :socket, :encoding)
      options[:port] = Integer(options[:port]) if options[:port]
      begin
        Mysql2::Client.new(**options, database: config[:database]).close
      rescue Mysql2::Error => e
        raise unless e.error_number == UNKNOWN_DATABASE

        client = Mysql2::Client.new(**options)
        begin
          name = config[:database].gsub("`", "``")
          client.query("CREATE DATABASE IF NOT EXISTS `#{name}` CHARACTER SET utf8mb4")
        ensure
          client.close
        end
      end
    end

    def with_connection(config)
      previous = ActiveRecord::Base.connection_handler
      ActiveRecord::Base.connection_handler = ActiveRecord::ConnectionAdapters::ConnectionHandler.new
      begin
        ActiveRecord::Base.establish_connection(config)
        yield
      ensure
        ActiveRecord::Base.remove_connection
        ActiveRecord::Base.connection_handler = previous
      end
    end

    def with_verbosity(verbose)
      saved = ActiveRecord::Migration.verbose
      ActiveRecord::Migration.verbose = verbose
      yield
    ensure
      ActiveRecord::Migration.verbose = saved
    end

    # ActiveRecord 7.2 moved the migration context to the connection pool;
    # both read the migrations_paths given in the connection config.
    def migration_context
      pool = ActiveRecord::Base.connection_pool
      return pool.migration_context if pool.respond_to?(:migration_context)

      ActiveRecord::Base.connection.migration_context
    end

    private_class_method :wait_for, :prepare_database, :create_mysql_database, :create_postgres_database,
                         :with_connection, :with_verbosity, :migration_context
  end
end
