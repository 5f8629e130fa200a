# frozen_string_literal: true

require "rails/engine"
require_relative "client_scripts"
require_relative "view_helpers"

module FayeOnline
  # Rails integration, as an engine named faye_online:
  # - `rake -T` lists faye:start, faye_online:status, faye_online:report
  #   and faye_online:migrate;
  # - `rails faye_online:install:migrations` copies the migrations into the
  #   app; until it does, `rails db:migrate` runs them from the gem with the
  #   app's own;
  # - `//= require faye-online` finds the browser client in the asset
  #   pipeline (app/assets/javascripts of the gem);
  # - config/faye_online.yml (per environment, with ERB) configures both the
  #   app's queries and a Faye server started from the app;
  # - views get faye_online_roster (a live roster for the current user).
  class Engine < ::Rails::Engine
    engine_name "faye_online"

    MIGRATIONS = File.expand_path("../../db/migrate", __dir__)

    initializer "faye_online.migrations" do |app|
      copied = Dir[File.join(app.root.to_s, "db", "migrate", "*.faye_online.rb")].any?
      paths = app.config.paths["db/migrate"]
      paths << MIGRATIONS unless copied || paths.to_a.include?(MIGRATIONS)
    end

    initializer "faye_online.assets" do |app|
      if app.config.respond_to?(:assets)
        app.config.assets.paths << root.join("app", "assets", "javascripts").to_s
        app.config.assets.precompile << "faye-online.js"
      end
    end

    initializer "faye_online.view_helpers" do
      ActiveSupport.on_load(:action_view) { include FayeOnline::ViewHelpers }
    end

    rake_tasks do
      load File.expand_path("tasks.rb", __dir__)
    end
  end

  # The name earlier releases used.
  Railtie = Engine
end
