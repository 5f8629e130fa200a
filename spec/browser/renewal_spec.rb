# frozen_string_literal: true

require "erb"

# A page whose token expires: refused, it stops and tells the page instead
# of handshaking again and again (each time as a new clientId); given a way
# to a fresh identity, it renews it before it expires and when refused, and
# stays online for as long as it is open.
renewal_secret = "renewal-secret-0123456789"

RSpec.describe "Refused and renewed identities, in a real browser", :browser, :integration do
  on_each_deployment(server: { secret: renewal_secret }) do
    include_context "a browser"

    let(:room) { new_room }
    let(:lesson) { new_lesson }

    define_method(:signed) do |user, expires_in|
      FayeOnline.auth_opts(uid: user["uid"], uname: user["uname"], room_channel: room,
                           time_channel: lesson, expires_in: expires_in, secret: renewal_secret)
    end

    it "stops a page whose token expired and tells it, instead of handshaking again and again" do
      ann = new_user("ann")
      open_page("expired", ann, auth: JSON.generate(signed(ann, -5)))
      eventually do
        expect(probe("expired")["refusals"])
          .to contain_exactly(a_hash_including("renewing" => false, "error" => a_string_starting_with("403:")))
      end
      consistently(duration: 2.0) do
        expect(probe("expired")["handshakes"]).to eq 1
        expect(probe("expired")["connects"].size).to eq 1
      end
      expect(online_uids(room)).to eq []
    end

    it "takes a fresh identity from auth_url when refused, and joins" do
      ann = new_user("ann")
      fresh = "data:application/json,#{ERB::Util.url_encode(JSON.generate(signed(ann, 600)))}"
      open_page("renewing", ann, auth: JSON.generate(signed(ann, -5)), auth_url: fresh)
      eventually(timeout: 10) { expect(online_uids(room)).to eq [ann["uid"]] }
      eventually { expect(last_list("renewing")).to include("count" => 1) }
      expect(probe("renewing")["renewals"]).to be >= 1
      expect(probe("renewing")["handshakes"]).to be <= 2
    end

    it "stops, and says why, when what the app gives back is no identity" do
      ann = new_user("ann")
      { "not-json" => "data:application/json,not%20json",
        "not-auth" => "data:application/json,#{ERB::Util.url_encode('{"room_channel":"/classes/*"}')}",
        "not-found" => "#{server_url.sub(%r{/faye\z}, '')}/no-such-auth" }.each do |name, url|
        open_page(name, ann, auth: JSON.generate(signed(ann, -5)), auth_url: url)
      end
      %w[not-json not-auth not-found].each do |name|
        eventually { expect(probe(name)["renew_failures"]).not_to be_empty, name }
      end
      consistently(duration: 2.0) do
        %w[not-json not-auth not-found].each { |name| expect(probe(name)["handshakes"]).to eq(1), name }
      end
      expect(online_uids(room)).to eq []
    end

    it "keeps a page online past its token's expiry, through a server restart" do
      ann = new_user("ann")
      first = signed(ann, 3)
      open_tab("long", ann, auth: JSON.generate(first), renew: JSON.generate(signed(ann, 600)))
      eventually(timeout: 5) { expect(probe("long")["renewals"]).to eq 1 }
      eventually(timeout: 5) { expect(Time.now.to_i).to be > first["expires"] }

      server.stop
      server.start
      if configuration.redis?
        # With Faye's engine on Redis the page's client outlives the
        # process: it goes on through the new one with the same clientId,
        # online all along.
        consistently(duration: 3) { expect(probe("long")["client_ids"].size).to eq 1 }
        expect(online_uids(room)).to eq [ann["uid"]]
        expect(sql.log_entries(ann["uid"]).map(&:first)).to eq [1]
      else
        # The server restarts after the first token expired: the page must
        # join anew, with the identity it renewed.
        eventually(timeout: 20) { expect(probe("long")["client_ids"].size).to eq 2 }
        eventually { expect(online_uids(room)).to eq [ann["uid"]] }
        eventually { expect(sql.log_entries(ann["uid"]).map(&:last)).to include(probe("long")["client_ids"].last) }
      end
      expect(probe("long")["refusals"]).to eq []
    end
  end
end
