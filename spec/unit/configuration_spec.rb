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
end
