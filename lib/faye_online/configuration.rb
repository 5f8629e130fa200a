# frozen_string_literal: true

require "erb"
require "uri"
require "yaml"
require_relative "blank"
require_relative "database"
require_relative "error"
require_relative "publish_guard"
require_relative "attendance"
require "openssl"

module FayeOnline
  # Turns get_server's options (the old gem's included) and the environment
  # into the settings of the native tracker.
  #
  # Presence lives in Redis when any Redis option is given (redis_url:, or
  # the old gem's host:, port:, database:, password:) or REDIS_URL is set,
  # and in process memory otherwise; `store:` forces either.
  #
  # What the Rust core receives (native_options) it checks again itself
  # (namespace, secret, session timeout); Ruby checks what only Ruby uses
  # (timeout:, gc:, mount:, store:, the dashboard token) and the secret,
  # which also signs tokens in apps that never build a tracker.
  class Configuration
    include Blank

    KNOWN = %i[store redis_url host port database password namespace gc timeout mount
               database_url migrate logger secret max_pending_records faye_url dashboard full_lists demo
               webhook_url webhook_secret webhook_delay api_token server_publish server_token private
               engine attendance].freeze

    # The environment variable each option falls back to: the only names the
    # loader reads from ENV (the README's options table lists the same).
    # Options missing here come from code or config/faye_online.yml alone.
    ENVIRONMENT = {
      redis_url: "REDIS_URL",
      database_url: Database::URL_VARIABLE,
      namespace: "FAYE_ONLINE_NAMESPACE",
      secret: "FAYE_ONLINE_SECRET",
      dashboard: "FAYE_ONLINE_DASHBOARD_TOKEN",
      faye_url: "FAYE_URL",
      webhook_url: "FAYE_ONLINE_WEBHOOK_URL",
      webhook_secret: "FAYE_ONLINE_WEBHOOK_SECRET",
      api_token: "FAYE_ONLINE_API_TOKEN",
      server_token: "FAYE_ONLINE_SERVER_TOKEN"
    }.freeze

    attr_reader :options, :logger, :root

    # Options given here win over those of config/faye_online.yml (under
    # the root), which win over the environment's variables.
    def initialize(options = {}, env: ENV, root: Configuration.default_root)
      @env = env
      @root = root
      @options = file_options.merge((options || {}).transform_keys(&:to_sym))
      unknown = @options.keys - KNOWN
      raise ConfigurationError, "unknown option(s) #{unknown.map(&:inspect).join(', ')}; known: #{KNOWN.join(', ')}" if unknown.any?

      @logger = @options[:logger]
      validate!
    end

    # The thresholds that decide each student's attendance status (see
    # FayeOnline::Attendance): seconds late_after and early_by, and the
    # percent of the lesson min_attended.
    def attendance
      Attendance.thresholds(@options[:attendance] || {})
    end

    # redis:// URL, or nil for the memory store.
    def redis_url
      return nil if @options[:store]&.to_sym == :memory
      return @options[:redis_url].to_s if present?(@options[:redis_url])

      if %i[host port database password].any? { |k| present?(@options[k]) }
        host = present?(@options[:host]) ? @options[:host].to_s : "127.0.0.1"
        port = Integer(@options[:port] || 6379)
        db = Integer(@options[:database] || 0)
        auth = present?(@options[:password]) ? ":#{URI.encode_www_form_component(@options[:password].to_s)}@" : ""
        return "redis://#{auth}#{host}:#{port}/#{db}"
      end
      return env_value(:redis_url) if present?(env_value(:redis_url))
      raise ConfigurationError, "store: :redis needs redis_url:, host:/port:/database: or REDIS_URL" if @options[:store]&.to_sym == :redis

      nil
    end

    def namespace
      (@options[:namespace] || env_value(:namespace) || "faye").to_s
    end

    # The key the app signs identities with (secret: or FAYE_ONLINE_SECRET);
    # nil means identities are not verified, as in the old gem.
    def secret
      value = given_or_env(:secret)
      present?(value) ? value.to_s : nil
    end

    # Faye's long-poll timeout (seconds).
    def timeout
      Float(@options[:timeout] || 25)
    end

    # Faye's engine: :redis (clients, subscriptions and messages in Redis,
    # shared by every process; the default when Redis is configured),
    # :memory (faye-online's memory engine, with its bookkeeping in the
    # Rust core; one process; the default without Redis) or :faye_memory
    # (Faye's own memory engine).
    ENGINES = %i[redis memory faye_memory].freeze

    def engine
      value = @options[:engine]
      return redis_url ? :redis : :memory if value.nil? || (value.respond_to?(:empty?) && value.empty?)

      value = value.to_s.to_sym
      unless ENGINES.include?(value)
        raise ConfigurationError, "engine: must be :redis, :memory or :faye_memory, not #{@options[:engine].inspect}"
      end
      raise ConfigurationError, "engine: :redis needs Redis (redis_url:, host:/port: or REDIS_URL)" if value == :redis && !redis_url

      value
    end

    # How often the sweep of vanished clientIds runs, and Faye's engine on
    # Redis collects dead clients (seconds).
    def gc
      Float(@options[:gc] || 5)
    end

    def mount
      (@options[:mount] || "/faye").to_s
    end

    # Whether each change publishes the room's whole list on
    # <room>/user_list (the old gem's contract; full_lists: false leaves
    # only <room>/user_changes).
    def full_lists?
      @options.key?(:full_lists) ? !!@options[:full_lists] : true
    end

    # The token that opens the dashboard (dashboard: or
    # FAYE_ONLINE_DASHBOARD_TOKEN); without one the dashboard is off.
    # Whether the server serves the demo classroom at / (demo: true; off by
    # default, and never for production: it signs any identity a visitor
    # asks for).
    def demo?
      @options[:demo] == true
    end

    def dashboard_token
      value = given_or_env(:dashboard)
      present?(value) ? value.to_s : nil
    end

    # Where pages find the Faye server (for an app's views; the server
    # itself does not use it): faye_url: or FAYE_URL.
    def faye_url
      value = @options[:faye_url] || env_value(:faye_url)
      present?(value) ? value.to_s : nil
    end

    # The channels only the app publishes on (server_publish:), as
    # patterns: "/broadcast/**", "/users/*/notifications".
    def server_publish
      Array(@options[:server_publish]).map(&:to_s)
    end

    # The private channels (private:), as patterns: "/chats/**".
    def private_channels
      Array(@options[:private]).map(&:to_s)
    end

    # The token FayeOnline.publish shows the server: server_token: (or
    # FAYE_ONLINE_SERVER_TOKEN), else one derived from the secret, so that
    # an app and its server that share the secret need nothing more; nil
    # without either.
    def server_token
      value = given_or_env(:server_token)
      return value.to_s if present?(value)

      secret && OpenSSL::HMAC.hexdigest("SHA256", secret, "faye-online server publishing")
    end

    # The token that opens the HTTP read API (api_token: or
    # FAYE_ONLINE_API_TOKEN); without one the API is off.
    def api_token
      value = given_or_env(:api_token)
      present?(value) ? value.to_s : nil
    end

    # Where the server sends presence events (webhook_url: or
    # FAYE_ONLINE_WEBHOOK_URL); nil sends none.
    def webhook_url
      value = given_or_env(:webhook_url)
      present?(value) ? value.to_s : nil
    end

    # The key webhook requests are signed with: webhook_secret: (or
    # FAYE_ONLINE_WEBHOOK_SECRET), else the identities' secret.
    def webhook_secret
      value = given_or_env(:webhook_secret)
      present?(value) ? value.to_s : secret
    end

    # Seconds each event waits before it is sent (a reload within it sends
    # nothing).
    def webhook_delay
      Float(@options.fetch(:webhook_delay, 3))
    end

    # The SQL database as get_server, DATABASE_URL, config/database.yml or
    # the embedded default name it (mysql2://… or sqlite3:…).
    def database_url
      @database_url ||= Database.resolve(@options[:database_url], root: @root, env: @env)
    end

    def sqlite?
      database_url.start_with?("sqlite")
    end

    # Migrations run at start for an SQLite database (the embedded default)
    # unless migrate: false; MySQL is migrated with rake db:migrate.
    def migrate?
      @options.key?(:migrate) ? !!@options[:migrate] : sqlite?
    end

    # A clientId not seen for this long is swept: later than Faye itself
    # would end the session (2 × timeout), so the sweep only catches what
    # Faye cannot, such as clients of a process that died.
    def session_timeout
      2 * timeout + 5
    end

    # The settings of the native tracker and query (Rust's Config), string
    # keys, durations in milliseconds.
    def native_options
      {
        "redis_url" => redis_url,
        "namespace" => namespace,
        "database_url" => Database.native_url(database_url, root: @root),
        "session_timeout_ms" => (session_timeout * 1000).round,
        "gc_interval_ms" => (gc * 1000).round,
        "secret" => secret,
        "max_pending_records" => Integer(@options[:max_pending_records] || 1_000_000),
        "full_lists" => full_lists?,
        "faye_engine" => (engine == :redis ? { "timeout_ms" => (timeout * 1000).round, "gc_ms" => (gc * 1000).round } : nil)
      }
    end

    # Rails.root in a Rails app, else the current directory.
    def self.default_root
      if defined?(::Rails) && ::Rails.respond_to?(:root) && ::Rails.root
        ::Rails.root.to_s
      else
        Dir.pwd
      end
    end

    # config/faye_online.yml, per environment (RAILS_ENV, RACK_ENV, else
    # development), with ERB:
    #
    #   production:
    #     redis_url: <%= ENV["REDIS_URL"] %>
    #     namespace: faye
    #     gc: 5
    def self.file_path(root)
      File.join(root.to_s, "config", "faye_online.yml")
    end

    def environment_name
      [@env["RAILS_ENV"], @env["RACK_ENV"]].find { |v| present?(v) } || "development"
    end

    private

    def file_options
      path = self.class.file_path(@root)
      return {} unless File.file?(path)

      data = YAML.safe_load(ERB.new(File.read(path)).result, aliases: true) || {}
      raise ConfigurationError, "#{path}: expected a mapping of environments" unless data.is_a?(Hash)

      section = data[environment_name]
      return {} if section.nil?
      raise ConfigurationError, "#{path}: #{environment_name} must be a mapping of options" unless section.is_a?(Hash)

      section.transform_keys(&:to_sym)
    rescue Psych::SyntaxError => e
      raise ConfigurationError, "#{path}: #{e.message}"
    end

    def validate!
      attendance
      if @options[:store] && !%i[redis memory].include?(@options[:store].to_sym)
        raise ConfigurationError, "store: must be :redis or :memory, not #{@options[:store].inspect}"
      end
      raise ConfigurationError, "timeout: must be positive" unless timeout.positive?
      raise ConfigurationError, "gc: must be zero (off) or positive" if gc.negative?
      raise ConfigurationError, "mount: must start with /" unless mount.start_with?("/")
      # Rust checks the server's secret too, but FayeOnline.auth_token signs
      # with it in apps that never start a tracker.
      raise ConfigurationError, "secret: must be at least 16 characters" if secret && secret.length < 16
      if dashboard_token && dashboard_token.length < 12
        raise ConfigurationError, "dashboard: the token must be at least 12 characters"
      end
      raise ConfigurationError, "api_token: the token must be at least 12 characters" if api_token && api_token.length < 12
      unless @options[:server_publish].nil? || @options[:server_publish].is_a?(Array)
        raise ConfigurationError, "server_publish: must be a list of channel patterns such as /broadcast/**"
      end
      bad = PublishGuard.invalid(server_publish)
      raise ConfigurationError, "server_publish: #{bad.map(&:inspect).join(', ')} is not a channel pattern such as /broadcast/** or /users/*/notes" if
        bad.any?
      raise ConfigurationError, "server_token: must be at least 16 characters" if server_token && server_token.length < 16
      unless @options[:private].nil? || @options[:private].is_a?(Array)
        raise ConfigurationError, "private: must be a list of channel patterns such as /chats/**"
      end
      bad = PublishGuard.invalid(private_channels)
      raise ConfigurationError, "private: #{bad.map(&:inspect).join(', ')} is not a channel pattern such as /chats/**" if
        bad.any?
      raise ConfigurationError, "private: channels need secret: (the app signs their tokens with it)" if
        private_channels.any? && secret.nil?
      if webhook_url
        uri = begin
          URI(webhook_url)
        rescue URI::InvalidURIError
          nil
        end
        raise ConfigurationError, "webhook_url: must be an http:// or https:// URL" unless uri.is_a?(URI::HTTP) && uri.host
        raise ConfigurationError, "webhook_url: needs a secret (secret: or webhook_secret:) to sign its requests" unless
          webhook_secret
        raise ConfigurationError, "webhook_secret: must be at least 16 characters" if webhook_secret.length < 16
      end
      raise ConfigurationError, "webhook_delay: must be zero or positive" if webhook_delay.negative?
      redis_url
    rescue ArgumentError, TypeError => e
      raise ConfigurationError, e.message
    end

    # The option's environment variable, through ENVIRONMENT.
    def env_value(name)
      @env[ENVIRONMENT.fetch(name)]
    end

    # An option given in code or in the file wins even when nil or blank (so
    # `dashboard: nil` turns the dashboard off whatever ENV says); else its
    # environment variable.
    def given_or_env(name)
      @options.key?(name) ? @options[name] : env_value(name)
    end
  end
end
