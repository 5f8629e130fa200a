# frozen_string_literal: true

# A clean stop (SIGTERM) writes what is pending before the process exits.
RSpec.describe "Shutdown", :integration do
  on_each_deployment(only: :mariadb) do
    it "waits on SIGTERM until the records of the last messages are written" do
      room = new_room
      lesson = new_lesson
      users = Array.new(5) { new_user }
      tabs = users.map { |user| join(user, room: room, lesson: lesson) }
      eventually { expect(Array(sql.online_uids(room)).size).to eq 5 }

      # Hold the log table so that the leaves' records stay pending.
      locker = Mysql2::Client.new(**FayeOnlineSpec::SqlDatabase::Mysql.connect_options(ENV.fetch(
        "FAYE_ONLINE_TEST_DATABASE_URL", "mysql2://root@127.0.0.1:3306/faye_online_test"
      )), database: sql.database)
      locker.query("LOCK TABLES faye_user_login_logs WRITE")
      tabs.each { |tab| leave(tab) }
      stopper = Thread.new { server.stop(timeout: 30) }
      consistently(duration: 1) { expect(stopper).to be_alive }
      locker.query("UNLOCK TABLES")
      expect(stopper.join(25)).to be_truthy

      users.each do |user|
        expect(sql.login_logs(user["uid"]).map { |row| row["status"].to_i }.sort).to eq [0, 1]
      end
      expect(sql.online_uids(room)).to eq []
    ensure
      locker&.close
    end
  end
end
