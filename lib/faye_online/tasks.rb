# frozen_string_literal: true

# Rake tasks for an application that runs a faye-online server. Load them from
# the application's Rakefile:
#
#   require "faye_online/tasks"
#
#   rake faye:start            start the server from faye.ru with thin
#   rake faye_online:migrate   create or update faye-online's tables
#   rake db:migrate            the same, when no other db:migrate exists
require "rake"
require_relative "database"
require_relative "migrator"

module FayeOnline
  # Helpers behind the rake tasks.
  module Tasks
    module_function

    # The application's root: Rails.root in a Rails app, else the directory
    # rake runs in (the one holding the Rakefile).
    def app_root
      if defined?(::Rails) && ::Rails.respond_to?(:root) && ::Rails.root
        ::Rails.root.to_s
      else
        Dir.pwd
      end
    end

    def start_server
      root = app_root
      unless File.file?(File.join(root, "faye.ru"))
        abort "faye-online: no faye.ru in #{root}; create one (see the README) and try again"
      end
      port = ENV.fetch("FAYE_PORT", "").strip
      port = "9292" if port.empty?
      Dir.chdir(root)
      exec("thin", "start", "-R", "faye.ru", "-p", port, "-e", "production")
    end

    def migrate
      url = Database.resolve(nil, root: app_root)
      Migrator.migrate!(url, verbose: true)
      puts "faye-online: #{Database.redact(url)} is up to date"
    end
  end
end

namespace :faye do
  desc "Start the faye-online server (faye.ru) with thin on $FAYE_PORT (default 9292)"
  task :start do
    FayeOnline::Tasks.start_server
  end
end

namespace :faye_online do
  desc "Create or update faye-online's tables (DATABASE_URL, config/database.yml or db/faye_online.sqlite3)"
  task :migrate do
    FayeOnline::Tasks.migrate
  end
end

# A Rails application has its own db:migrate; faye-online's migrations join it
# through the railtie. Elsewhere db:migrate means faye-online's migrations.
unless Rake::Task.task_defined?("db:migrate") || defined?(::Rails::Railtie)
  namespace :db do
    desc "Create or update faye-online's tables (same as faye_online:migrate)"
    task migrate: "faye_online:migrate"
  end
end
