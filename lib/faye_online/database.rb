# frozen_string_literal: true

require "uri"
require_relative "blank"

module FayeOnline
  # Decides which SQL database holds faye-online's durable records, and is
  # the one place that spells its address for each consumer: ActiveRecord
  # (migrations) and the Rust core.
  #
  # Addresses are URLs:
  #   mysql2://user:password@host:3306/database?socket=/run/mysqld/mysqld.sock
  #   postgresql://user:password@host:5432/database   (also postgres://)
  #   postgresql:///database?host=/run/postgresql     (a Unix socket directory)
  #   sqlite3:db/faye_online.sqlite3        (relative to the application's root)
  #   sqlite3:/var/lib/app/faye_online.sqlite3
  #
  # A database.yml entry becomes such a URL first (resolve), so that every
  # source ends in one form; normalize then settles the scheme and the SQLite
  # path once, and native_url and active_record_config only respell it. Only
  # active_record_config loads ActiveRecord: the Faye server process does not
  # need it unless it migrates.
  module Database
    DEFAULT_URL = "sqlite3:db/faye_online.sqlite3"
    # The environment variable resolve reads (database_url: in Configuration).
    URL_VARIABLE = "DATABASE_URL"
    MYSQL_ADAPTERS = %w[mysql2 mysql trilogy].freeze
    POSTGRES_ADAPTERS = %w[postgresql postgres postgis].freeze
    # The connection parameters of a postgresql:// URL that the Rust core's
    # client reads; the others (ActiveRecord's pool=, encoding=, ...) are
    # ActiveRecord's own and are left out of native_url.
    POSTGRES_NATIVE_PARAMETERS = %w[host hostaddr port user password dbname options application_name
                                    sslmode connect_timeout keepalives keepalives_idle
                                    target_session_attrs].freeze

    module_function

    # The embedded default: an SQLite file under db/ of the application.
    def default_url
      DEFAULT_URL
    end

    # The URL to use: +explicit+ when given, else ENV["DATABASE_URL"], else the
    # entry for RAILS_ENV/RACK_ENV (default "development") in
    # <root>/config/database.yml, else default_url.
    def resolve(explicit = nil, root: Dir.pwd, env: ENV)
      return explicit.to_s unless Blank.blank?(explicit)
      return env[URL_VARIABLE] unless Blank.blank?(env[URL_VARIABLE])

      from_database_yml(root, env) || default_url
    end

    # The URL with its scheme settled (mysql2://, postgresql:// or sqlite3:)
    # and an SQLite path made absolute against +root+, so that the migrations
    # and the Rust core open the same file whatever the working directory.
    def normalize(url, root: Dir.pwd)
      url = url.to_s
      case url
      when %r{\Amysql2?://}
        url.sub(/\Amysql2?:/, "mysql2:")
      when %r{\Apostgres(?:ql)?://}
        url.sub(/\Apostgres(?:ql)?:/, "postgresql:")
      when /\Asqlite3?:/
        path = sqlite_path(url)
        path == ":memory:" ? "sqlite3::memory:" : "sqlite3:#{File.expand_path(path, root.to_s)}"
      else
        raise ArgumentError,
              "faye-online supports mysql2://, postgresql:// and sqlite3: database URLs, not #{redact(url).inspect}"
      end
    end

    # True when +url+ names a PostgreSQL database.
    def postgresql?(url)
      url.to_s.match?(%r{\Apostgres(?:ql)?://})
    end

    # The URL form the Rust core accepts: mysql://... (query kept),
    # postgresql://... (only the connection parameters it reads) or
    # sqlite://<absolute path>.
    def native_url(url, root: Dir.pwd)
      normalized = normalize(url, root: root)
      if normalized.start_with?("mysql2:")
        normalized.sub(/\Amysql2:/, "mysql:")
      elsif normalized.start_with?("postgresql:")
        native_postgres_url(normalized)
      elsif normalized == "sqlite3::memory:"
        "sqlite::memory:"
      else
        "sqlite://#{normalized.delete_prefix('sqlite3:')}"
      end
    end

    # The ActiveRecord connection configuration (a Hash with symbol keys) for
    # +url+, as ActiveRecord itself reads a URL: user, password and query
    # parameters unescaped, the query's settings (socket=, encoding=, ...)
    # over +defaults+. MySQL gets utf8mb4 unless the URL says otherwise.
    def active_record_config(url, root: Dir.pwd, **defaults)
      require "active_record"
      require "active_record/database_configurations"
      normalized = normalize(url, root: root)
      mysql = normalized.start_with?("mysql2:")
      defaults = { encoding: "utf8mb4" }.merge(defaults) if mysql
      config = ActiveRecord::DatabaseConfigurations::UrlConfig
               .new("faye_online", "primary", url_for_active_record(normalized), defaults)
               .configuration_hash.to_h
      config = with_query_connection(config, normalized) if postgresql?(normalized)
      if (mysql || postgresql?(normalized)) && Blank.blank?(config[:database])
        raise ArgumentError, "no database name in #{redact(url).inspect}"
      end

      config
    end

    # The file path inside an sqlite3: URL, as written (maybe relative).
    # Accepts sqlite3:path, sqlite3://path and sqlite3:///absolute/path.
    def sqlite_path(url)
      path = url.to_s.sub(/\Asqlite3?:/, "")
      path = path.sub(%r{\A//}, "")
      path = path.split("?", 2).first.to_s
      raise ArgumentError, "no database file in #{url.inspect}" if path.empty?

      path
    end

    # The URL with its password replaced by "***" (in user:password@, and a
    # password= in the query), for messages and logs.
    def redact(url)
      url.to_s.sub(%r{\A([a-z0-9+.-]+://[^:@/?]*):[^@/?]*@}i, '\1:***@')
         .gsub(/([?&]password=)[^&]*/i, '\1***')
    end

    # ActiveRecord parses the URL with URI, which refuses a path holding a
    # space (a Rails app under "My Projects"); it unescapes what it reads, so
    # the SQLite path goes in escaped.
    def url_for_active_record(normalized)
      return normalized unless normalized.start_with?("sqlite3:/")

      path = normalized.delete_prefix("sqlite3:")
      "sqlite3:#{path.gsub(%r{[^A-Za-z0-9/._~-]}) { |c| c.bytes.map { |b| format('%%%02X', b) }.join }}"
    end

    # Reads config/database.yml the way Rails does (ERB first, YAML aliases
    # allowed) and turns the environment's entry into a URL; nil when there is
    # no such file or entry.
    def from_database_yml(root, env)
      file = File.join(root.to_s, "config", "database.yml")
      return nil unless File.file?(file)

      require "erb"
      require "yaml"
      all = YAML.safe_load(ERB.new(File.read(file)).result, aliases: true) || {}
      name = env["RAILS_ENV"] || env["RACK_ENV"] || "development"
      entry = all[name]
      return nil unless entry.is_a?(Hash)

      # Rails' multi-database form nests entries under names ("primary", ...).
      unless entry.key?("adapter") || entry.key?("url")
        entry = entry["primary"] || entry.values.find { |v| v.is_a?(Hash) }
        return nil unless entry.is_a?(Hash)
      end
      return entry["url"].to_s unless Blank.blank?(entry["url"])

      url_from_config(entry, root)
    end

    # Builds a URL from a database.yml-style Hash.
    def url_from_config(config, root = Dir.pwd)
      config = config.transform_keys(&:to_s)
      adapter = config["adapter"].to_s
      if MYSQL_ADAPTERS.include?(adapter)
        mysql_url(config)
      elsif POSTGRES_ADAPTERS.include?(adapter)
        postgres_url(config)
      elsif adapter.start_with?("sqlite")
        database = config["database"].to_s
        raise ArgumentError, "database.yml: sqlite3 entry has no database" if database.empty?

        database = File.expand_path(database, root.to_s) unless database == ":memory:"
        "sqlite3:#{database}"
      else
        raise ArgumentError, "faye-online supports the mysql2, postgresql and sqlite3 adapters, not #{adapter.inspect}"
      end
    end

    def mysql_url(config)
      userinfo = userinfo(config)
      host = Blank.blank?(config["host"]) ? "localhost" : config["host"].to_s
      host = "[#{host}]" if host.include?(":") && !host.start_with?("[")
      port = Blank.blank?(config["port"]) ? "" : ":#{config["port"]}"
      query = Blank.blank?(config["socket"]) ? "" : "?socket=#{escape(config["socket"])}"
      "mysql2://#{userinfo}#{host}#{port}/#{escape(config["database"])}#{query}"
    end

    # database.yml's postgresql entry as a URL. A host that is a directory
    # (or none, as Rails takes it) is a Unix socket, passed as ?host=.
    def postgres_url(config)
      raise ArgumentError, "database.yml: postgresql entry has no database" if Blank.blank?(config["database"])

      userinfo = userinfo(config)
      host = config["host"].to_s
      host = default_postgres_socket if host.empty?
      query = []
      if host.start_with?("/")
        # A URL without a host cannot hold user:password@: they go in the
        # query, which libpq, ActiveRecord and the core all read.
        query << "host=#{escape(host)}"
        query << "user=#{escape(config["username"])}" unless Blank.blank?(config["username"])
        query << "password=#{escape(config["password"])}" unless Blank.blank?(config["password"])
        userinfo = ""
        host = ""
      elsif host.include?(":") && !host.start_with?("[")
        host = "[#{host}]"
      end
      port = Blank.blank?(config["port"]) ? "" : ":#{config["port"]}"
      query << "port=#{escape(config["port"])}" if host.empty? && !port.empty?
      port = "" if host.empty?
      query << "sslmode=#{escape(config["sslmode"])}" unless Blank.blank?(config["sslmode"])
      query = query.empty? ? "" : "?#{query.join('&')}"
      "postgresql://#{userinfo}#{host}#{port}/#{escape(config["database"])}#{query}"
    end

    # Some ActiveRecord versions let the URL's empty host and password win
    # over the query's (postgresql:///db?host=/run/postgresql&password=…,
    # the form of a Unix socket): the query's connection parameters fill
    # what the URL left empty.
    def with_query_connection(config, url)
      query = URI.decode_www_form(url.split("?", 2)[1].to_s).to_h
      %w[host port user password].each_with_object(config.dup) do |key, out|
        out[key.to_sym] = query[key] if Blank.blank?(out[key.to_sym]) && !Blank.blank?(query[key])
      end
    end

    # "user:password@" (escaped) of a database.yml entry, or "".
    def userinfo(config)
      return "" if Blank.blank?(config["username"])

      info = escape(config["username"])
      info += ":#{escape(config["password"])}" unless Blank.blank?(config["password"])
      "#{info}@"
    end

    # Where libpq looks for the server's socket when no host is given.
    def default_postgres_socket
      %w[/var/run/postgresql /run/postgresql /tmp].find { |dir| File.directory?(dir) } || "localhost"
    end

    # The Rust core's form of a normalized postgresql:// URL: the query
    # keeps only the connection parameters it reads.
    def native_postgres_url(normalized)
      base, query = normalized.split("?", 2)
      kept = query.to_s.split("&").select do |pair|
        POSTGRES_NATIVE_PARAMETERS.include?(URI.decode_www_form_component(pair.split("=", 2).first.to_s))
      end
      kept.empty? ? base : "#{base}?#{kept.join('&')}"
    end

    def escape(value)
      URI.encode_www_form_component(value.to_s).gsub("+", "%20")
    end

    private_class_method :from_database_yml, :mysql_url, :postgres_url, :userinfo, :default_postgres_socket,
                         :with_query_connection,
                         :native_postgres_url, :escape, :url_for_active_record
  end
end
