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
                                  "rake faye_online:migrate")

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
  end
end
