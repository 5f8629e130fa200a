# frozen_string_literal: true

# Rake tasks for an application that runs a faye-online server. Load them from
# the application's Rakefile:
#
#   require "faye_online/tasks"
#
#   rake faye:start            start the server from faye.ru with thin (WORKERS=n: n
#                              processes behind HAProxy, sharing Redis)
#   rake faye_online:migrate   create or update faye-online's tables
#   rake faye_online:status    who is online where, and whose timers run
#   rake faye_online:report    CSV of time per lesson and per user, and attendance
#                              in scheduled lessons (TIME_ZONE=Europe/Paris)
#   rake faye_online:schedule  load lessons' windows from a CSV (FILE=lessons.csv)
#   rake db:migrate            the same as faye_online:migrate, when no other exists
require "rake"
require_relative "database"
require_relative "configuration"
require_relative "migrator"
require_relative "workers"

module FayeOnline
  # Helpers behind the rake tasks.
  module Tasks
    module_function

    # The application's root: Rails.root in a Rails app, else the directory
    # rake runs in (the one holding the Rakefile).
    def app_root
      Configuration.default_root
    end

    # In a Rails app, load it first (its initializers may configure
    # faye-online); elsewhere config/faye_online.yml and ENV do.
    def load_app
      Rake::Task[:environment].invoke if Rake::Task.task_defined?(:environment)
      require_relative "../faye_online"
    end

    def print_status(out = $stdout)
      load_app
      status = FayeOnline.status
      out.puts "faye-online status (from #{status['source'] == 'hot' ? 'the hot store' : 'SQL'})"
      out.puts "rooms: none online" if status["rooms"].empty?
      status["rooms"].each do |room|
        out.puts "#{room['room']}: #{room['count']} online"
        room["users"].each do |user|
          ids = user["client_ids"].empty? ? "" : "  (#{user['client_ids'].join(', ')})"
          out.puts "  #{user['uid']} #{user['uname']}#{ids}"
        end
      end
      status["lessons"].each do |lesson|
        out.puts "#{lesson['lesson']}: #{lesson['count']} timing"
        lesson["users"].each do |user|
          since = user["started_at"] ? " since #{user['started_at'].utc.iso8601} (#{user['seconds']} s)" : ""
          out.puts "  #{user['uid']} #{user['uname']}#{since}"
        end
      end
    end

    # FROM and TO (dates or times; default: all time up to now), DIR
    # (default: tmp/faye_online_report under the app).
    def write_report(env = ENV, out = $stdout)
      load_app
      dir = env["DIR"].to_s.empty? ? File.join(app_root, "tmp", "faye_online_report") : env["DIR"]
      from = env["FROM"].to_s.empty? ? nil : env["FROM"]
      to = env["TO"].to_s.empty? ? nil : env["TO"]
      zone = env["TIME_ZONE"].to_s.empty? ? "UTC" : env["TIME_ZONE"]
      FayeOnline.report(dir: dir, from: from, to: to, time_zone: zone).each { |path| out.puts "faye-online: wrote #{path}" }
    rescue ArgumentError => e
      abort "faye-online: #{e.message}"
    end

    # Loads lessons' windows from a CSV file (FILE) with the columns lesson,
    # starts_at, ends_at; times without an offset are in TIME_ZONE (default
    # UTC). Every row is checked first: one bad row loads nothing.
    def load_schedule(env = ENV, out = $stdout)
      load_app
      file = env["FILE"].to_s
      abort "faye-online: FILE=<path of a CSV with lesson,starts_at,ends_at> is needed" if file.empty?
      abort "faye-online: #{file} does not exist" unless File.file?(file)
      zone = env["TIME_ZONE"].to_s.empty? ? "UTC" : env["TIME_ZONE"]
      rows = schedule_rows(file, zone)
      rows.each { |lesson, starts, ends| FayeOnline.schedule(lesson, starts_at: starts, ends_at: ends, time_zone: zone) }
      out.puts "faye-online: scheduled #{rows.size} lessons from #{file}"
    rescue ArgumentError, CSV::MalformedCSVError => e
      abort "faye-online: #{e.message}"
    end

    def schedule_rows(file, zone)
      require "csv"
      tz = Attendance.zone(zone)
      table = CSV.read(file, headers: true)
      missing = %w[lesson starts_at ends_at] - table.headers.compact.map(&:strip)
      raise ArgumentError, "#{file} lacks the column(s) #{missing.join(', ')}" if missing.any?

      errors = []
      rows = table.each_with_index.filter_map do |row, index|
        line = index + 2
        lesson, starts, ends = row.values_at("lesson", "starts_at", "ends_at").map { |v| v.to_s.strip }
        begin
          raise ArgumentError, "#{lesson.inspect} is not a lesson channel" unless lesson.match?(%r{\A(/[A-Za-z0-9_-]+)+\z})

          s = Attendance.time(starts, tz, "starts_at")
          e = Attendance.time(ends, tz, "ends_at")
          raise ArgumentError, "ends_at must be after starts_at" unless e > s

          [lesson, starts, ends]
        rescue ArgumentError => e
          errors << "line #{line}: #{e.message}"
          nil
        end
      end
      raise ArgumentError, "nothing loaded; #{errors.join('; ')}" if errors.any?

      rows
    end

    def print_failed(out = $stdout)
      load_app
      failed = FayeOnline.failed_records
      out.puts "faye-online: no records set aside" if failed.empty?
      failed.each do |row|
        out.puts "##{row['id']} #{row['created_at']}: #{row['error']}"
        out.puts "  #{row['record']}"
      end
    end

    def replay(out = $stdout)
      load_app
      written, failing = FayeOnline.replay_failed
      out.puts "faye-online: wrote #{written} records set aside; #{failing} still refused"
    end

    def start_server
      root = app_root
      unless File.file?(File.join(root, "faye.ru"))
        abort "faye-online: no faye.ru in #{root}; create one (see the README) and try again"
      end
      port = ENV.fetch("FAYE_PORT", "").strip
      port = "9292" if port.empty?
      workers = ENV.fetch("WORKERS", "").strip
      workers = Integer(workers.empty? ? "1" : workers, exception: false)
      abort "faye-online: WORKERS must be a whole number, not #{ENV['WORKERS'].inspect}" unless workers
      return Workers.new(root: root, port: port, workers: workers).run if workers > 1

      Dir.chdir(root)
      exec("thin", "start", "-R", "faye.ru", "-p", port, "-e", "production")
    end

    def migrate
      config = Configuration.new
      url = config.database_url
      Migrator.migrate!(url, verbose: true, root: config.root)
      puts "faye-online: #{Database.redact(url)} is up to date"
    end
  end
end

namespace :faye do
  desc "Start the faye-online server (faye.ru) with thin on $FAYE_PORT (default 9292); WORKERS=n: n processes behind HAProxy"
  task :start do
    FayeOnline::Tasks.start_server
  end
end

namespace :faye_online do
  desc "Create or update faye-online's tables (DATABASE_URL, config/database.yml or db/faye_online.sqlite3)"
  task :migrate do
    FayeOnline::Tasks.migrate
  end

  desc "Show who is online in each room (with clientIds) and whose lesson timers run"
  task :status do
    FayeOnline::Tasks.print_status
  end

  desc "Write CSV of time per lesson and per user, and attendance in scheduled lessons (FROM=2026-01-01 TO=2026-02-01 DIR=reports TIME_ZONE=UTC)"
  task :report do
    FayeOnline::Tasks.write_report
  end

  desc "Load lessons' scheduled windows from a CSV of lesson,starts_at,ends_at (FILE=lessons.csv TIME_ZONE=Europe/Paris)"
  task :schedule do
    FayeOnline::Tasks.load_schedule
  end

  desc "List the records the database refused for good, set aside with why"
  task :failed do
    FayeOnline::Tasks.print_failed
  end

  desc "Write the records set aside again, once their cause is fixed"
  task :replay do
    FayeOnline::Tasks.replay
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
