# frozen_string_literal: true

require "rails/railtie"

module FayeOnline
  # Rails integration: `rake db:migrate` runs faye-online's migrations with
  # the app's own, and `rake faye:start` / `rake faye_online:migrate` appear
  # in `rake -T`.
  class Railtie < ::Rails::Railtie
    MIGRATIONS = File.expand_path("../../db/migrate", __dir__)

    initializer "faye_online.migrations" do |app|
      paths = app.config.paths["db/migrate"]
      paths << MIGRATIONS unless paths.to_a.include?(MIGRATIONS)
    end

    rake_tasks do
      load File.expand_path("tasks.rb", __dir__)
    end
  end
end
