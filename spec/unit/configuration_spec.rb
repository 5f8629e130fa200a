# frozen_string_literal: true

require "tmpdir"
require "faye_online/configuration"

RSpec.describe FayeOnline::Configuration do
  around do |example|
    Dir.mktmpdir do |dir|
      @root = dir
      example.run
    end
  end

  def write_yml(text)
    FileUtils.mkdir_p(File.join(@root, "config"))
    File.write(File.join(@root, "config", "faye_online.yml"), text)
  end

  def config(options = {}, env = {})
    described_class.new(options, env: env, root: @root)
  end

  describe "config/faye_online.yml" do
    before do
      write_yml(<<~YAML)
        development:
          namespace: dev_ns
          gc: 2
        production:
          redis_url: <%= "redis://127.0.0.1:6379/" + (1 + 2).to_s %>
          namespace: prod
          secret: <%= "s" * 20 %>
      YAML
    end

    it "takes the section of RAILS_ENV or RACK_ENV, with ERB" do
      production = config({}, "RAILS_ENV" => "production")
      expect(production.redis_url).to eq "redis://127.0.0.1:6379/3"
      expect(production.namespace).to eq "prod"
      expect(production.secret).to eq "s" * 20
      expect(config({}, "RACK_ENV" => "production").namespace).to eq "prod"
    end

    it "defaults to the development section" do
      expect(config.namespace).to eq "dev_ns"
      expect(config.gc).to eq 2.0
      expect(config.redis_url).to be_nil
    end

    it "yields to options given in code, and wins over the environment" do
      expect(config({ namespace: "code" }).namespace).to eq "code"
      expect(config({}, "FAYE_ONLINE_NAMESPACE" => "from_env").namespace).to eq "dev_ns"
    end

    it "is ignored for an environment it does not name" do
      expect(config({}, "RAILS_ENV" => "test").namespace).to eq "faye"
    end
  end

  it "refuses unknown options in the file" do
    write_yml("development:\n  colour: blue\n")
    expect { config }.to raise_error(FayeOnline::ConfigurationError, /unknown option.*colour/)
  end

  it "refuses a file that is not a mapping, naming it" do
    write_yml("- just\n- a list\n")
    expect { config }.to raise_error(FayeOnline::ConfigurationError, /faye_online\.yml/)
  end

  it "refuses broken YAML, naming the file" do
    write_yml("development:\n  gc: [1,\n")
    expect { config }.to raise_error(FayeOnline::ConfigurationError, /faye_online\.yml/)
  end

  it "checks values from the file like any other" do
    write_yml("development:\n  gc: -1\n")
    expect { config }.to raise_error(FayeOnline::ConfigurationError, /gc/)
  end

  describe "the environment" do
    let(:values) do
      { redis_url: "redis://127.0.0.1:6379/7", database_url: "mysql2://root@127.0.0.1/from_env",
        namespace: "from_env", secret: "s" * 16, dashboard: "d" * 12, faye_url: "https://faye.example.com/faye",
        webhook_url: "https://app.example.com/faye_online/events", webhook_secret: "w" * 16, api_token: "a" * 12,
        server_token: "t" * 16 }
    end

    # What an option needs beside it to be valid.
    let(:needs) { { webhook_url: { secret: "s" * 16 } } }

    def read(configuration, option)
      case option
      when :dashboard then configuration.dashboard_token
      else configuration.public_send(option)
      end
    end

    it "is read through ENVIRONMENT, one variable per option" do
      expect(described_class::ENVIRONMENT.keys).to match_array values.keys
      described_class::ENVIRONMENT.each do |option, variable|
        given = needs.fetch(option, {})
        expect(read(config(given, variable => values[option]), option)).to eq(values[option]), variable
        expect(read(config(given.merge(option => values[option]), variable => "   "), option)).to eq(values[option]), variable
      end
    end

    it "yields to an option given as nil for the secret and the dashboard" do
      env = { "FAYE_ONLINE_SECRET" => "s" * 16, "FAYE_ONLINE_DASHBOARD_TOKEN" => "d" * 12 }
      expect(config({ secret: nil, dashboard: nil }, env)).to have_attributes(secret: nil, dashboard_token: nil)
    end

    it "matches the README's options table" do
      readme = File.read(File.expand_path("../../README.md", __dir__))
      table = readme[/^## Options\n.*?\n\n(\|.*?)\n\n/m, 1]
      rows = table.lines.drop(2).to_h do |row|
        cells = row.split("|").map(&:strip)
        [cells[1], cells[2]]
      end
      described_class::ENVIRONMENT.each do |option, variable|
        expect(rows.fetch("`#{option}:`")).to include(%(`ENV["#{variable}"]`))
      end
      named = table.scan(/ENV\["([A-Z_]+)"\]/).flatten.uniq
      expect(named).to match_array described_class::ENVIRONMENT.values
      documented = rows.keys.flat_map { |cell| cell.scan(/`(\w+):`/).flatten }.map(&:to_sym)
      expect(documented).to match_array described_class::KNOWN
    end
  end

  describe "webhooks and the API" do
    it "sends webhooks only with a secret to sign them, to an http(s) URL" do
      url = "http://127.0.0.1:3000/faye_online/events"
      expect { config(webhook_url: url) }.to raise_error(FayeOnline::ConfigurationError, /needs a secret/)
      expect(config(webhook_url: url, secret: "s" * 16).webhook_secret).to eq "s" * 16
      expect(config(webhook_url: url, secret: "s" * 16, webhook_secret: "w" * 16).webhook_secret).to eq "w" * 16
      expect { config(webhook_url: url, webhook_secret: "short") }
        .to raise_error(FayeOnline::ConfigurationError, /16 characters/)
      ["ftp://example.com/x", "not a url", "/relative"].each do |bad|
        expect { config(webhook_url: bad, secret: "s" * 16) }
          .to raise_error(FayeOnline::ConfigurationError, /webhook_url/), bad
      end
      expect { config(webhook_delay: -1) }.to raise_error(FayeOnline::ConfigurationError, /webhook_delay/)
      expect { config(webhook_delay: "soon") }.to raise_error(FayeOnline::ConfigurationError)
      expect(config.webhook_delay).to eq 3.0
      expect(config.webhook_url).to be_nil
    end

    it "keeps server_publish: to well-formed channel patterns, and the server token to 16 characters or more" do
      expect(config(server_publish: ["/broadcast/**", "/users/*/notifications"]).server_publish)
        .to eq ["/broadcast/**", "/users/*/notifications"]
      [["broadcast"], ["/a/**/b"], ["/a b"], [""], [3], "/broadcast/**"].each do |bad|
        expect { config(server_publish: bad) }.to raise_error(FayeOnline::ConfigurationError, /server_publish/), bad.inspect
      end
      expect { config(server_token: "short") }.to raise_error(FayeOnline::ConfigurationError, /server_token/)
      expect(config.server_token).to be_nil
      derived = config(secret: "s" * 16).server_token
      expect(derived).to match(/\A\h{64}\z/)
      expect(derived).not_to include("s" * 16)
      expect(config(secret: "s" * 16, server_token: "t" * 16).server_token).to eq "t" * 16
    end

    it "takes private: patterns only with a secret to sign their tokens" do
      expect(config(private: ["/chats/**"], secret: "s" * 16).private_channels).to eq ["/chats/**"]
      expect { config(private: ["/chats/**"]) }.to raise_error(FayeOnline::ConfigurationError, /need secret/)
      expect { config(private: ["chats"], secret: "s" * 16) }.to raise_error(FayeOnline::ConfigurationError, /private:/)
      expect { config(private: "/chats/**", secret: "s" * 16) }.to raise_error(FayeOnline::ConfigurationError, /list/)
    end

    it "opens the API only with a token of 12 characters or more" do
      expect(config.api_token).to be_nil
      expect { config(api_token: "short") }.to raise_error(FayeOnline::ConfigurationError, /api_token/)
      expect(config(api_token: "a" * 12).api_token).to eq "a" * 12
    end
  end

  describe "#native_options" do
    it "holds the native tracker's settings, with string keys" do
      options = config({ redis_url: "redis://127.0.0.1:6379/2", namespace: "ns", timeout: 10, gc: 2,
                         secret: "s" * 16, database_url: "sqlite3:db/x.sqlite3", max_pending_records: 50,
                         full_lists: false }).native_options
      expect(options).to eq(
        "redis_url" => "redis://127.0.0.1:6379/2", "namespace" => "ns",
        "database_url" => "sqlite://#{File.join(@root, 'db', 'x.sqlite3')}",
        "session_timeout_ms" => 25_000, "gc_interval_ms" => 2_000, "secret" => "s" * 16,
        "max_pending_records" => 50, "full_lists" => false,
        "faye_engine" => { "timeout_ms" => 10_000, "gc_ms" => 2_000 }
      )
    end

    it "runs Faye on Redis by default when Redis is configured, and on memory when asked or without Redis" do
      expect(config({ redis_url: "redis://127.0.0.1:6379/2" }).engine).to eq :redis
      expect(config({ redis_url: "redis://127.0.0.1:6379/2", engine: "memory" }).native_options["faye_engine"]).to be_nil
      expect(config({ store: :memory }).engine).to eq :memory
      expect(config({ store: :memory }).native_options["faye_engine"]).to be_nil
      expect { config({ store: :memory, engine: :redis }).engine }.to raise_error(FayeOnline::ConfigurationError, /needs Redis/)
      expect { config({ redis_url: "redis://h", engine: :mongo }).engine }.to raise_error(FayeOnline::ConfigurationError, /:redis, :memory or :faye_memory/)
    end

    it "has the defaults of the settings not given" do
      configuration = config({ store: :memory })
      expect(configuration.native_options).to include("redis_url" => nil, "secret" => nil, "namespace" => "faye",
                                                      "session_timeout_ms" => 55_000, "gc_interval_ms" => 5_000,
                                                      "max_pending_records" => 1_000_000, "full_lists" => true)
    end
  end
end
