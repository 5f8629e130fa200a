# frozen_string_literal: true

require "uri"

module FayeOnline
  # Decides which SQL database holds faye-online's durable records and spells
  # its address for each consumer: ActiveRecord (migrations) and the Rust core.
  #
  # Addresses are URLs:
  #   mysql2://user:password@host:3306/database?socket=/run/mysqld/mysqld.sock
  #   sqlite3:db/faye_online.sqlite3        (relative to the working directory)
  #   sqlite3:/var/lib/app/faye_online.sqlite3
  #
  # Nothing here loads ActiveRecord: the Faye server process does not need it.
  module Database
    DEFAULT_URL = "sqlite3:db/faye_online.sqlite3"
    MYSQL_ADAPTERS = %w[mysql2 mysql trilogy].freeze

    module_function

    # The embedded default: an SQLite file under db/ of the working directory.
    def default_url
      DEFAULT_URL
    end

    # The URL to use: +explicit+ when given, else ENV["DATABASE_URL"], else the
    # entry for RAILS_ENV/RACK_ENV (default "development") in
    # <root>/config/database.yml, else default_url.
    def resolve(explicit = nil, root: Dir.pwd, env: ENV)
      return explicit.to_s unless blank?(explicit)
      return env["DATABASE_URL"] unless blank?(env["DATABASE_URL"])

      from_database_yml(root, env) || default_url
    end

    # The URL form the Rust core accepts: mysql://... (query kept) or
    # sqlite://<absolute path>.
    def native_url(url, root: Dir.pwd)
      url = url.to_s
      case url
      when %r{\Amysql2?://}
        url.sub(/\Amysql2?:/, "mysql:")
      when /\Asqlite3?:/
        path = sqlite_path(url)
        return "sqlite::memory:" if path == ":memory:"

        "sqlite://#{File.expand_path(path, root)}"
      else
        raise ArgumentError, "faye-online supports mysql2:// and sqlite3: database URLs, not #{redact(url).inspect}"
      end
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

    # The URL with its password replaced by "***", for messages and logs.
    def redact(url)
      url.to_s.sub(%r{\A([a-z0-9+.-]+://[^:@/]*):[^@/]*@}i, '\1:***@')
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
      return entry["url"].to_s unless blank?(entry["url"])

      url_from_config(entry, root)
    end

    # Builds a URL from a database.yml-style Hash.
    def url_from_config(config, root = Dir.pwd)
      config = config.transform_keys(&:to_s)
      adapter = config["adapter"].to_s
      if MYSQL_ADAPTERS.include?(adapter)
        mysql_url(config)
      elsif adapter.start_with?("sqlite")
        database = config["database"].to_s
        raise ArgumentError, "database.yml: sqlite3 entry has no database" if database.empty?

        database = File.expand_path(database, root.to_s) unless database == ":memory:"
        "sqlite3:#{database}"
      else
        raise ArgumentError, "faye-online supports the mysql2 and sqlite3 adapters, not #{adapter.inspect}"
      end
    end

    def mysql_url(config)
      userinfo = ""
      unless blank?(config["username"])
        userinfo = escape(config["username"])
        userinfo += ":#{escape(config["password"])}" unless blank?(config["password"])
        userinfo += "@"
      end
      host = blank?(config["host"]) ? "localhost" : config["host"].to_s
      host = "[#{host}]" if host.include?(":") && !host.start_with?("[")
      port = blank?(config["port"]) ? "" : ":#{config["port"]}"
      query = blank?(config["socket"]) ? "" : "?socket=#{escape(config["socket"])}"
      "mysql2://#{userinfo}#{host}#{port}/#{escape(config["database"])}#{query}"
    end

    def escape(value)
      URI.encode_www_form_component(value.to_s).gsub("+", "%20")
    end

    def blank?(value)
      value.nil? || value.to_s.strip.empty?
    end

    private_class_method :from_database_yml, :mysql_url, :escape, :blank?
  end
end
