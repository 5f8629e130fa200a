# frozen_string_literal: true

require "open3"
require "tmpdir"

# The rake tasks in an app directory configured by config/faye_online.yml
# alone: rake -T lists them, status shows a live user, report writes CSV.
RSpec.describe "Rake tasks", :integration do
  on_each_deployment do |configuration|
    def rake(dir, *args, env: {})
      command = [Gem.ruby, "-S", "rake", "-f", File.join(dir, "Rakefile"), *args]
      output, status = Open3.capture2e({ "RUBYLIB" => File.join(FayeOnlineSpec::ROOT, "lib"),
                                         "RAILS_ENV" => nil, "RACK_ENV" => "production" }.merge(env),
                                       *command, chdir: dir)
      [output, status]
    end

    it "lists, shows status and writes a report from config/faye_online.yml" do
      room = new_room
      lesson = new_lesson
      user = new_user("yuki")
      tab = join(user, room: room, lesson: lesson)
      eventually { expect(online_uids(room)).to eq [user["uid"]] }

      Dir.mktmpdir do |dir|
        FileUtils.mkdir_p(File.join(dir, "config"))
        options = configuration.query_options(namespace: namespace)
        yml = { "production" => options.transform_keys(&:to_s).transform_values(&:to_s) }
        File.write(File.join(dir, "config", "faye_online.yml"), YAML.dump(yml))
        File.write(File.join(dir, "Rakefile"), %(require "faye_online/tasks"\n))

        output, status = rake(dir, "-T")
        expect(status).to be_success, output
        expect(output).to include("rake faye:start", "rake faye_online:status", "rake faye_online:report",
                                  "rake faye_online:migrate", "rake faye_online:schedule")

        output, status = rake(dir, "faye_online:status")
        expect(status).to be_success, output
        expect(output).to include("#{room}: 1 online", "#{user['uid']} yuki")
        expect(output).to include(tab.client_id) if configuration.redis?

        leave(tab)
        eventually { expect(sql.login_logs(user["uid"]).size).to eq 2 }
        output, status = rake(dir, "faye_online:report", "FROM=2000-01-01", "DIR=#{dir}/out")
        expect(status).to be_success, output
        rows = CSV.read(File.join(dir, "out", "by_user.csv"), headers: true).map(&:to_h)
        expect(rows.map { |r| r.values_at("uid", "uname", "lesson") }).to eq [[user["uid"].to_s, "yuki", lesson]]

        output, status = rake(dir, "faye_online:report", "FROM=tomorrow-ish", "TO=2000-01-01")
        expect(status).not_to be_success
        expect(output).to include("faye-online:")
      end
    end

    it "loads lessons' windows from a CSV, all or none" do
      first = new_lesson
      second = new_lesson
      Dir.mktmpdir do |dir|
        FileUtils.mkdir_p(File.join(dir, "config"))
        options = configuration.query_options(namespace: namespace)
        File.write(File.join(dir, "config", "faye_online.yml"),
                   YAML.dump({ "production" => options.transform_keys(&:to_s).transform_values(&:to_s) }))
        File.write(File.join(dir, "Rakefile"), %(require "faye_online/tasks"\n))
        bad = File.join(dir, "bad.csv")
        File.write(bad, "lesson,starts_at,ends_at\n#{first},2026-02-02 09:00,2026-02-02 10:00\n" \
                        "#{second},2026-02-02 11:00,2026-02-02 10:00\n/a b,x,y\n")
        output, status = rake(dir, "faye_online:schedule", "FILE=#{bad}")
        expect(status).not_to be_success
        expect(output).to include("line 3: ends_at must be after starts_at", "line 4:")
        expect { FayeOnline.attendance(first) }.to raise_error(ArgumentError, /no schedule/)

        good = File.join(dir, "lessons.csv")
        File.write(good, "lesson,starts_at,ends_at\n#{first},2026-02-02 09:00,2026-02-02 10:00\n" \
                         "#{second},2026-02-02T11:00:00Z,2026-02-02T12:00:00Z\n")
        output, status = rake(dir, "faye_online:schedule", "FILE=#{good}", "TIME_ZONE=Europe/Paris")
        expect(status).to be_success, output
        expect(output).to include("scheduled 2 lessons")
        expect(FayeOnline.attendance(first)).to include("starts_at" => "2026-02-02T08:00:00.000Z")
        expect(FayeOnline.attendance(second, time_zone: "Europe/Paris"))
          .to include("starts_at" => "2026-02-02T12:00:00.000+01:00")

        output, status = rake(dir, "faye_online:schedule")
        expect(status).not_to be_success
        expect(output).to include("FILE=")
      end
    end
  end
end
