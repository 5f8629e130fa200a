# frozen_string_literal: true

require "json"
require "uri"

module FayeOnlineSpec
  # Reads faye-online's durable tables straight from MariaDB (mysql2 gem),
  # PostgreSQL (pg gem) or SQLite (sqlite3 gem), the way an app or an
  # auditor would see them.
  class SqlDatabase
    KEPT_TABLES = %w[schema_migrations ar_internal_metadata].freeze

    def self.open(url)
      if url.start_with?("mysql2:")
        Mysql.new(url)
      elsif url.match?(%r{\Apostgres(?:ql)?://})
        Postgres.new(url)
      elsif url.start_with?("sqlite3:")
        Sqlite.new(url)
      else
        raise ArgumentError, "unsupported database URL: #{url}"
      end
    end

    # The host, port, user and password of a database server's URL, the
    # user under +user_key+ (the client gems name it differently).
    def self.server_options(url, port:, user_key:, user:)
      uri = URI(url)
      options = { host: uri.host || "127.0.0.1", port: uri.port || port,
                  user_key => uri.user ? URI.decode_www_form_component(uri.user) : user }
      options[:password] = URI.decode_www_form_component(uri.password) if uri.password
      options
    end

    # The database a server URL names.
    def self.database_name(url)
      URI(url).path.to_s.delete_prefix("/")
    end

    # Empties every faye-online table (keeps the migration bookkeeping).
    def truncate_all!
      (tables - KEPT_TABLES).each { |table| truncate(table) }
    end

    def channel_id(name)
      rows("SELECT id FROM faye_channels WHERE name = ?", name).first&.fetch("id")
    end

    # The log table has no id column: rows come oldest first by time, and a
    # login before a logout of the same second.
    LOG_ORDER = "ORDER BY t, status DESC"

    # Login (status 1) and logout (status 0) rows of a uid, oldest first.
    def login_logs(uid)
      rows("SELECT * FROM faye_user_login_logs WHERE uid = ? #{LOG_ORDER}", uid).map { |row| normalize_log(row) }
    end

    def login_logs_of_client(client_id)
      rows("SELECT * FROM faye_user_login_logs WHERE clientId = ? #{LOG_ORDER}", client_id)
        .map { |row| normalize_log(row) }
    end

    # [status, clientId] pairs of a uid's log rows, oldest first.
    def log_entries(uid)
      login_logs(uid).map { |row| [row["status"], row["clientId"]] }
    end

    # The uids listed online in a room (nil when the room has no list row).
    def online_uids(room)
      id = channel_id(room)
      return nil unless id

      row = rows("SELECT user_info_list FROM faye_channel_online_lists WHERE channel_id = ?", id).first
      row && JSON.parse(row["user_info_list"].to_s.empty? ? "[]" : row["user_info_list"])
    end

    # The decoded online_times JSON of a user (nil when the user has no row).
    def online_times(uid)
      row = rows("SELECT online_times FROM faye_user_online_times WHERE user_id = ?", uid).first
      row && JSON.parse(row["online_times"].to_s.empty? ? "{}" : row["online_times"])
    end

    def count(table)
      rows("SELECT COUNT(*) AS n FROM #{table}").first["n"].to_i
    end

    private

    def normalize_log(row)
      status = row["status"]
      status = status == true || status.to_s == "1" || status.to_s == "t" ? 1 : 0
      row.merge("status" => status, "uid" => row["uid"].to_i, "channel_id" => row["channel_id"]&.to_i)
    end

    # MariaDB / MySQL through the mysql2 gem.
    class Mysql < SqlDatabase
      attr_reader :database

      def self.connect_options(url)
        server_options(url, port: 3306, user_key: :username, user: "root")
      end

      def self.create_database(url)
        require "mysql2"
        client = Mysql2::Client.new(**connect_options(url))
        client.query("CREATE DATABASE IF NOT EXISTS `#{database_name(url)}` CHARACTER SET utf8mb4")
      ensure
        client&.close
      end

      def self.drop_database(url)
        require "mysql2"
        client = Mysql2::Client.new(**connect_options(url))
        client.query("DROP DATABASE IF EXISTS `#{database_name(url)}`")
      ensure
        client&.close
      end

      def initialize(url)
        require "mysql2"
        super()
        @database = self.class.database_name(url)
        @client = Mysql2::Client.new(**self.class.connect_options(url), database: @database,
                                                                        encoding: "utf8mb4")
        @lock = Mutex.new
      end

      def rows(sql, *params)
        @lock.synchronize do
          statement = @client.prepare(sql)
          begin
            statement.execute(*params).to_a
          ensure
            statement.close
          end
        end
      end

      def tables
        @lock.synchronize { @client.query("SHOW TABLES", as: :array).map(&:first) }
      end

      def truncate(table)
        @lock.synchronize { @client.query("TRUNCATE TABLE `#{table}`") }
      end

      def close
        @client.close
      end
    end

    # PostgreSQL through the pg gem. The specs write their SQL once, with `?`
    # placeholders and the old gem's bare clientId; here they become $1, $2,
    # ... and "clientId" (the migrations made the column with that case).
    class Postgres < SqlDatabase
      def self.connect_options(url)
        server_options(url, port: 5432, user_key: :user, user: "postgres")
      end

      def self.admin(url)
        require "pg"
        client = PG.connect(**connect_options(url), dbname: "postgres")
        yield client
      ensure
        client&.close
      end

      def self.create_database(url)
        admin(url) do |client|
          name = database_name(url)
          next if client.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", [name]).ntuples.positive?

          client.exec("CREATE DATABASE #{client.quote_ident(name)} ENCODING 'UTF8' TEMPLATE template0")
        end
      end

      def self.drop_database(url)
        admin(url) { |client| client.exec("DROP DATABASE IF EXISTS #{client.quote_ident(database_name(url))} WITH (FORCE)") }
      end

      def initialize(url)
        require "pg"
        super()
        @client = PG.connect(**self.class.connect_options(url), dbname: self.class.database_name(url))
        @client.exec("SET client_min_messages TO warning")
        # Integers as Integers and times as Times, as mysql2 gives them.
        @client.type_map_for_results = PG::BasicTypeMapForResults.new(@client)
        @lock = Mutex.new
      end

      def rows(sql, *params)
        n = 0
        sql = sql.gsub(/\?/) { "$#{n += 1}" }.gsub(/(?<!")\bclientId\b(?!")/, '"clientId"')
        params = params.map { |p| p.is_a?(Time) ? p.utc.strftime("%Y-%m-%d %H:%M:%S") : p }
        @lock.synchronize { @client.exec_params(sql, params).to_a }
      end

      def tables
        rows("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").map { |row| row["tablename"] }
      end

      def truncate(table)
        @lock.synchronize { @client.exec("TRUNCATE TABLE #{@client.quote_ident(table)} RESTART IDENTITY") }
      end

      def close
        @client.close
      end
    end

    # SQLite through the sqlite3 gem, in a child process. The test process
    # also holds faye-online's own (bundled) SQLite library through
    # FayeOnline.online_users/online_time; two SQLite libraries on one file in
    # one process clear each other's POSIX locks, so this reader stays apart.
    class Sqlite < SqlDatabase
      READER = <<~'RUBY'
        require "json"
        require "sqlite3"
        db = SQLite3::Database.new(ARGV.fetch(0))
        db.busy_timeout = 5_000
        $stdout.sync = true
        $stdin.each_line do |line|
          request = JSON.parse(line)
          begin
            statement = db.prepare(request.fetch("sql"))
            begin
              result = statement.execute(*request.fetch("params"))
              columns = result.columns
              rows = result.map { |values| columns.zip(values).to_h }
            ensure
              statement.close
            end
            puts JSON.generate("rows" => rows)
          rescue StandardError => e
            puts JSON.generate("error" => "#{e.class}: #{e.message}")
          end
        end
      RUBY

      attr_reader :path

      def self.path_of(url)
        url.delete_prefix("sqlite3:").sub(%r{\A//(?=/)}, "")
      end

      def initialize(url)
        super()
        @path = self.class.path_of(url)
        @io = IO.popen([Gem.ruby, "-e", READER, @path], "r+")
        @lock = Mutex.new
      end

      def rows(sql, *params)
        reply = @lock.synchronize do
          @io.puts(JSON.generate("sql" => sql, "params" => params))
          line = @io.gets or raise "the SQLite reader process exited"
          JSON.parse(line)
        end
        raise "SQLite: #{reply['error']} (#{sql})" if reply["error"]

        reply["rows"]
      end

      def tables
        rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
          .map { |row| row["name"] }
      end

      def truncate(table)
        rows(%(DELETE FROM "#{table}"))
      end

      def close
        @io.close
      rescue IOError
        nil
      end
    end
  end
end
