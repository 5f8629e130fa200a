# frozen_string_literal: true

# A record the database refuses for good must block nothing else: it is set
# aside, listed, and written again once its cause is fixed. An app that ran
# the old gem may have utf8 (3-byte) tables, which cannot hold an emoji.
RSpec.describe "Records the database refuses", :integration do
  on_each_deployment(only: :mariadb) do |configuration|
    let(:room) { new_room }
    let(:lesson) { new_lesson }

    def mysql(statement)
      configuration.sql.rows(statement)
    end

    around do |example|
      mysql("ALTER TABLE faye_online_user_names CONVERT TO CHARACTER SET utf8mb3")
      example.run
    ensure
      mysql("ALTER TABLE faye_online_user_names CONVERT TO CHARACTER SET utf8mb4")
    end

    it "says at start what to change in an old table, sets aside a name it cannot hold, writes everyone else, " \
       "and replays it once fixed" do
      # The server starts on the old table, as a site that ran the old gem does.
      server.stop
      server.start
      emoji = new_user("Zoë 😀")
      plain = [new_user("ann"), new_user("bob")]
      join(emoji, room: room, lesson: lesson)
      plain.each { |user| join(user, room: room, lesson: lesson) }
      eventually { expect(online_uids(room)).to eq plain.map { |u| u["uid"] } }
      plain.each { |user| eventually { expect(sql.login_logs(user["uid"]).size).to eq 1 } }
      expect(sql.login_logs(emoji["uid"]).size).to eq 1

      failed = FayeOnline.failed_records
      expect(failed.size).to eq 1
      expect(failed.first["error"]).to include("Incorrect string value")
      expect(JSON.parse(failed.first["record"])).to include("kind" => "RoomJoin", "uid" => emoji["uid"],
                                                            "uname" => "Zoë 😀")
      eventually do
        expect(server.log).to include("set aside a record the database refuses")
        expect(server.log).to include("faye_online_user_names.uname is in utf8mb3")
      end

      mysql("ALTER TABLE faye_online_user_names CONVERT TO CHARACTER SET utf8mb4")
      expect(FayeOnline.replay_failed).to eq [1, 0]
      expect(FayeOnline.failed_records).to be_empty
      expect(online_uids(room)).to eq([emoji, *plain].map { |u| u["uid"] }.sort)
    end
  end
end
