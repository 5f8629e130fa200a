# frozen_string_literal: true

module FayeOnlineSpec
  # The deployments an example group runs on: all of
  # FayeOnlineSpec.configurations, or those `only` names.
  #   :redis    the ones sharing state through Redis (several processes)
  #   :mariadb  the ones keeping records in MariaDB
  #   :postgresql the ones keeping records in PostgreSQL
  #   :any      one of them, for what does not depend on the deployment
  def self.deployments(only = nil)
    case only
    when nil then configurations
    when :redis then configurations.select(&:redis?)
    when :mariadb then configurations.select(&:mariadb?)
    when :postgresql then configurations.select(&:postgresql?)
    when :any then configurations.first(1)
    else raise ArgumentError, "no deployments called #{only.inspect}"
    end
  end

  # Runs the body of an example group once per deployment, each in a group
  # of its own that names the deployment and has a faye-online server of its
  # own ("a faye-online server", with `server:` as its options):
  #
  #   RSpec.describe "Presence", :integration do
  #     on_each_deployment(server: { timeout: 2, gc: 1 }) do |configuration|
  #       it_behaves_like "a presence tracker"
  #     end
  #   end
  #
  # reports "Presence (Redis + MariaDB) ..." and "Presence (memory + SQLite)
  # ...", so a failure says where it happened.
  module OnEachDeployment
    def on_each_deployment(only: nil, server: {}, &body)
      FayeOnlineSpec.deployments(only).each do |configuration|
        context "(#{configuration.name})" do
          include_context "a faye-online server", configuration, server
          class_exec(configuration, &body)
        end
      end
    end
  end
end

RSpec.configure do |config|
  config.extend FayeOnlineSpec::OnEachDeployment
end
