# frozen_string_literal: true

# Signed identities from a real page: the app renders FayeOnline.auth_opts
# into the page, and faye-online.js sends the token with the page's
# /meta/connect and its subscription to the room's user list.
browser_secret = "browser-secret-0123456789"

RSpec.describe "Signed identities, in a real browser", :browser, :integration do
  on_each_deployment(only: :redis, server: { secret: browser_secret }) do
    include_context "a browser"

    let(:room) { new_room }
    let(:lesson) { new_lesson }

    define_method(:signed) do |user|
      FayeOnline.auth_opts(uid: user["uid"], uname: user["uname"], room_channel: room,
                           time_channel: lesson, secret: browser_secret)
    end

    it "joins with the token the app signed, and sees its room's list" do
      ann = new_user("ann")
      client_id = open_tab("signed", ann, auth: JSON.generate(signed(ann)))

      eventually { expect(sql.log_entries(ann["uid"])).to eq [[1, client_id]] }
      eventually { expect(online_uids(room)).to eq [ann["uid"]] }
      eventually { expect(last_list("signed")).to include("count" => 1, "users" => [ann]) }
    end

    it "is refused with 403, and stores nothing, when the page claims another user than the token's" do
      ann = new_user("ann")
      mallory = new_user("mallory")
      forged = signed(mallory).merge("current_user" => ann)
      open_page("forged", ann, auth: JSON.generate(forged))

      eventually { expect(probe("forged")["errors"]).to include(a_string_starting_with("/meta/connect 403:auth.token:")) }
      consistently(duration: 1.0) do
        expect(sql.log_entries(ann["uid"])).to eq []
        expect(sql.log_entries(mallory["uid"])).to eq []
        expect(online_uids(room)).to eq []
      end
    end
  end
end
