# frozen_string_literal: true

require "tmpdir"
require "faye_online/database"

RSpec.describe FayeOnline::Database do
  around do |example|
    Dir.mktmpdir("faye-online-spec") do |dir|
      @root = dir
      example.run
    end
  end

  attr_reader :root

  def write_database_yml(text)
    FileUtils.mkdir_p(File.join(root, "config"))
    File.write(File.join(root, "config", "database.yml"), text)
  end

  describe ".resolve" do
    it "prefers an explicit URL" do
      env = { "DATABASE_URL" => "mysql2://env@127.0.0.1/env_db" }
      expect(described_class.resolve("sqlite3:explicit.sqlite3", root: root, env: env)).to eq "sqlite3:explicit.sqlite3"
    end

    it "then takes DATABASE_URL" do
      write_database_yml("development:\n  adapter: sqlite3\n  database: db/dev.sqlite3\n")
      env = { "DATABASE_URL" => "mysql2://env@127.0.0.1/env_db" }
      expect(described_class.resolve(nil, root: root, env: env)).to eq "mysql2://env@127.0.0.1/env_db"
      expect(described_class.resolve("  ", root: root, env: env)).to eq "mysql2://env@127.0.0.1/env_db"
    end

    it "then reads the development entry of config/database.yml, sqlite paths relative to the root" do
      write_database_yml("development:\n  adapter: sqlite3\n  database: db/dev.sqlite3\n")
      expect(described_class.resolve(nil, root: root, env: {}))
        .to eq "sqlite3:#{File.join(root, 'db', 'dev.sqlite3')}"
    end

    it "uses the RAILS_ENV entry and escapes MySQL credentials" do
      write_database_yml(<<~YAML)
        default: &default
          adapter: mysql2
          host: 127.0.0.1
          port: 3307
        production:
          <<: *default
          username: app
          password: "p@ss w"
          database: <%= "school" %>_production
      YAML
      expect(described_class.resolve(nil, root: root, env: { "RAILS_ENV" => "production" }))
        .to eq "mysql2://app:p%40ss%20w@127.0.0.1:3307/school_production"
    end

    it "keeps a socket as a query parameter" do
      write_database_yml("development:\n  adapter: mysql2\n  username: root\n  database: dev\n" \
                         "  socket: /run/mysqld/mysqld.sock\n")
      expect(described_class.resolve(nil, root: root, env: {}))
        .to eq "mysql2://root@localhost/dev?socket=%2Frun%2Fmysqld%2Fmysqld.sock"
    end

    it "uses an entry's url and RACK_ENV" do
      write_database_yml("test:\n  url: mysql2://root@127.0.0.1/from_url\n")
      expect(described_class.resolve(nil, root: root, env: { "RACK_ENV" => "test" })).to eq "mysql2://root@127.0.0.1/from_url"
    end

    it "reads the primary database of Rails' multi-database form" do
      write_database_yml("development:\n  primary:\n    adapter: sqlite3\n    database: db/primary.sqlite3\n" \
                         "  cache:\n    adapter: sqlite3\n    database: db/cache.sqlite3\n")
      expect(described_class.resolve(nil, root: root, env: {}))
        .to eq "sqlite3:#{File.join(root, 'db', 'primary.sqlite3')}"
    end

    it "falls back to the embedded SQLite default" do
      expect(described_class.resolve(nil, root: root, env: {})).to eq "sqlite3:db/faye_online.sqlite3"
      write_database_yml("production:\n  adapter: sqlite3\n  database: db/prod.sqlite3\n")
      expect(described_class.resolve(nil, root: root, env: {})).to eq described_class.default_url
    end

    it "refuses an adapter it does not support" do
      write_database_yml("development:\n  adapter: sqlserver\n  database: dev\n")
      expect { described_class.resolve(nil, root: root, env: {}) }.to raise_error(ArgumentError, /sqlserver/)
    end

    it "turns a postgresql entry into a URL, credentials escaped" do
      write_database_yml(<<~YAML)
        development:
          adapter: postgresql
          encoding: unicode
          host: db.internal
          port: 5433
          username: app user
          password: p@ss/word
          database: school
          pool: 5
      YAML
      expect(described_class.resolve(nil, root: root, env: {}))
        .to eq "postgresql://app%20user:p%40ss%2Fword@db.internal:5433/school"
    end

    it "reaches PostgreSQL through its Unix socket when the entry names a directory, or no host" do
      write_database_yml("development:\n  adapter: postgresql\n  host: /run/pg\n  port: 5433\n  database: school\n")
      expect(described_class.resolve(nil, root: root, env: {}))
        .to eq "postgresql:///school?host=%2Frun%2Fpg&port=5433"
      write_database_yml("development:\n  adapter: postgresql\n  database: school\n")
      expect(described_class.resolve(nil, root: root, env: {})).to match(%r{\Apostgresql:///school\?host=})
      write_database_yml("development:\n  adapter: postgresql\n  host: /run/pg\n  username: app\n  " \
                         "password: p@ss\n  database: school\n")
      url = described_class.resolve(nil, root: root, env: {})
      expect(url).to eq "postgresql:///school?host=%2Frun%2Fpg&user=app&password=p%40ss"
      expect(described_class.active_record_config(url))
        .to include(adapter: "postgresql", host: "/run/pg", user: "app", password: "p@ss", database: "school")
      expect(described_class.native_url(url)).to eq url
    end

    it "refuses a postgresql entry without a database" do
      write_database_yml("development:\n  adapter: postgresql\n  host: db\n")
      expect { described_class.resolve(nil, root: root, env: {}) }.to raise_error(ArgumentError, /no database/)
    end
  end

  describe ".native_url" do
    it "spells MySQL URLs as mysql:// and keeps the query" do
      expect(described_class.native_url("mysql2://root:pw@127.0.0.1:3306/app?socket=/tmp/my.sock"))
        .to eq "mysql://root:pw@127.0.0.1:3306/app?socket=/tmp/my.sock"
      expect(described_class.native_url("mysql://root@db/app")).to eq "mysql://root@db/app"
    end

    it "makes SQLite paths absolute against the root" do
      expect(described_class.native_url("sqlite3:db/faye_online.sqlite3", root: root))
        .to eq "sqlite://#{File.join(root, 'db', 'faye_online.sqlite3')}"
      absolute = File.join(root, "abs.sqlite3")
      expect(described_class.native_url("sqlite3:#{absolute}")).to eq "sqlite://#{absolute}"
      expect(described_class.native_url("sqlite3://#{absolute}")).to eq "sqlite://#{absolute}"
    end

    it "supports an in-memory SQLite database" do
      expect(described_class.native_url("sqlite3::memory:")).to eq "sqlite::memory:"
    end

    it "spells PostgreSQL URLs as postgresql:// and keeps only the connection parameters the core reads" do
      expect(described_class.native_url("postgres://app:pw@db:5432/school"))
        .to eq "postgresql://app:pw@db:5432/school"
      expect(described_class.native_url("postgresql://app@db/school?pool=5&sslmode=disable&encoding=unicode" \
                                        "&application_name=faye"))
        .to eq "postgresql://app@db/school?sslmode=disable&application_name=faye"
      expect(described_class.native_url("postgresql:///school?host=%2Frun%2Fpg"))
        .to eq "postgresql:///school?host=%2Frun%2Fpg"
    end

    it "hides a password in the URL's query as well as in user:password@" do
      expect(described_class.redact("postgresql:///school?host=%2Frun%2Fpg&user=app&password=s3cret&port=5433"))
        .to eq "postgresql:///school?host=%2Frun%2Fpg&user=app&password=***&port=5433"
      expect(described_class.redact("postgresql://app:s3cret@db/school?password=s3cret"))
        .to eq "postgresql://app:***@db/school?password=***"
    end

    it "refuses other databases without showing the password" do
      expect { described_class.native_url("oracle://app:secret@db/app") }
        .to raise_error(ArgumentError) { |error|
          expect(error.message).to include("oracle://app:***@db/app")
          expect(error.message).not_to include("secret")
        }
    end
  end

  describe ".active_record_config" do
    it "reads a MySQL URL as ActiveRecord does, with utf8mb4 unless the URL says otherwise" do
      config = described_class.active_record_config(
        "mysql2://app:p%40ss%20w@127.0.0.1:3307/school?socket=%2Frun%2Fmysqld%2Fmysqld.sock"
      )
      expect(config).to eq(adapter: "mysql2", host: "127.0.0.1", port: 3307, username: "app", password: "p@ss w",
                           database: "school", socket: "/run/mysqld/mysqld.sock", encoding: "utf8mb4")
      expect(described_class.active_record_config("mysql://root@db/app?encoding=utf8"))
        .to include(adapter: "mysql2", encoding: "utf8", database: "app")
    end

    it "reads a PostgreSQL URL as ActiveRecord does, and refuses one without a database" do
      config = described_class.active_record_config("postgres://app:p%40ss@db.internal:5433/school?sslmode=disable")
      expect(config).to include(adapter: "postgresql", host: "db.internal", port: 5433, username: "app",
                                password: "p@ss", database: "school", sslmode: "disable")
      expect { described_class.active_record_config("postgresql://app@db.internal") }
        .to raise_error(ArgumentError, /no database/)
    end

    it "adds the defaults it is given, under the URL's own settings" do
      config = described_class.active_record_config("mysql2://root@db/app?pool=2", pool: "9", migrations_paths: ["m"])
      expect(config).to include(pool: "2", migrations_paths: ["m"])
    end

    it "opens the same SQLite file as the native URL, relative paths against the root" do
      %w[sqlite3:db/faye_online.sqlite3 sqlite:db/faye_online.sqlite3].each do |url|
        config = described_class.active_record_config(url, root: root)
        expect(config).to eq(adapter: "sqlite3", database: File.join(root, "db", "faye_online.sqlite3"))
        expect(described_class.native_url(url, root: root)).to eq "sqlite://#{config[:database]}"
      end
      spaced = File.join(root, "My Projects", "app 50%.sqlite3")
      expect(described_class.active_record_config("sqlite3:#{spaced}")).to include(database: spaced)
      expect(described_class.active_record_config("sqlite3::memory:")).to include(database: ":memory:")
    end

    it "refuses a MySQL URL without a database, and other databases, without showing the password" do
      expect { described_class.active_record_config("mysql2://root:secret@db/") }
        .to raise_error(ArgumentError, %r{no database name in "mysql2://root:\*\*\*@db/"})
      expect { described_class.active_record_config("oracle://app:secret@db/app") }
        .to raise_error(ArgumentError) { |error| expect(error.message).not_to include("secret") }
    end
  end
end
