# Walks docs/deploying.md's bosh steps that need no network with the real
# bosh CLI, in a scratch folder laid out as the guide assumes (this checkout
# with ../bosh-deployment next to it; the fixture copy stands in for the
# clone): step 4's `bosh int ... --vars-store creds.yml` and the files it
# installs from creds.yml (the certificates must form a working libvirt TLS
# setup), its SSH variant, step 5's create-env flags (as `bosh int`: the guide
# cannot run create-env without network), step 6's logins, step 7's cloud
# config and step 8's cpi-config with the guide's host-vars.yml. Commands are
# read from the guide, so a change there is what gets tested.
require 'fileutils'
require 'openssl'
require 'shellwords'
require 'tmpdir'
require 'yaml'
require_relative 'lib/bosh_cli'
require_relative 'lib/doc_commands'
require_relative 'lib/manifests'

module ReleaseTest
  class DeployingDocTests
    include Assertions

    DOC = 'docs/deploying.md'.freeze
    # What tls.yml generates (step 4 names them).
    TLS_VARIABLES = %w[libvirt_ca libvirt_server_tls libvirt_client_tls].freeze
    # Where libvirtd looks for its side, and the names pkipath wants.
    SERVER_FILES = { ca: '/etc/pki/CA/cacert.pem', cert: '/etc/pki/libvirt/servercert.pem',
                     key: '/etc/pki/libvirt/private/serverkey.pem' }.freeze
    CLIENT_FILES = { ca: 'cacert.pem', cert: 'clientcert.pem', key: 'clientkey.pem' }.freeze

    def initialize(repo, runner)
      @repo = repo
      @runner = runner
    end

    def run
      @sections = DocCommands.sections(File.read(File.join(@repo, DOC)))
      Dir.mktmpdir('deploying-walk') do |tmp|
        @tmp = tmp
        check_step4_vars_store
        check_step4_tls_files
        check_step4_ssh
        check_step5_create_env
        check_step6_login
        check_step7_cloud_config
        check_step8_cpi_config
      end
    end

    private

    def section(number)
      @sections[number] or fail!("#{DOC} has no section \"## #{number}.\"")
    end

    # SECTION's ### subsection whose title starts with TITLE (or the section).
    def part(number, title = nil)
      text = section(number)
      return text unless title

      text.split(/^(?=### )/).find { |p| p.start_with?("### #{title}") } or
        fail!("#{DOC} §#{number} has no \"### #{title}\"")
    end

    def commands(text, subcommand)
      DocCommands.sh_blocks(text).flat_map { |b| DocCommands.bosh_commands(b) }.select { |c| c.subcommand == subcommand }
    end

    # A folder laid out as the guide expects: NAME/bosh-libvirt-cpi (this
    # checkout's manifests/) next to NAME/bosh-deployment (the fixture).
    def checkout(name)
      root = File.join(@tmp, name)
      dir = File.join(root, 'bosh-libvirt-cpi')
      FileUtils.mkdir_p(dir)
      FileUtils.ln_s(File.join(@repo, 'manifests'), File.join(dir, 'manifests'))
      FileUtils.ln_s(Manifests.fixture_dir, File.join(root, 'bosh-deployment'))
      dir
    end

    def run_bosh(words, dir)
      result = BoshCli.run(words.drop(1), chdir: dir)
      fail!(result.describe) unless result.success?
      result
    end

    # The command of §4 that writes the vars store.
    def vars_store_command
      found = commands(part(4, 'TLS'), 'int').select(&:vars_store)
      assert_equal(1, found.size, "#{DOC} §4: bosh int commands with --vars-store")
      found.first
    end

    def check_step4_vars_store
      @runner.check("#{DOC} §4: bosh int --vars-store creds.yml generates the TLS certificates, with every variable given") do
        command = vars_store_command
        dir = checkout('tls')
        run_bosh(command.words, dir)
        creds_path = File.join(dir, command.vars_store)
        assert(File.file?(creds_path), "#{command.vars_store} was not written")
        creds = Manifests.load_yaml(creds_path)
        missing = TLS_VARIABLES.reject { |v| creds[v].is_a?(Hash) && creds[v]['certificate'].to_s.include?('BEGIN CERTIFICATE') }
        assert_no_problems(missing.map { |v| "#{v} is not a certificate in #{command.vars_store}" }, 'vars store')
        # Without --var-errs bosh int leaves unknown ((variables)) in place;
        # the flags must give exactly what bosh.yml and the ops files need.
        run_bosh(command.words + %w[--var-errs --var-errs-unused], dir)
        @step4 = { command: command, dir: dir, creds: creds_path }
      end
    end

    def step4
      @step4 or fail!('§4 did not produce a vars store (see its check)')
    end

    # Runs the TLS part's bosh int lines as a shell would, following `cd`
    # and `creds=$PWD/...`; returns {file the guide writes => content}.
    def run_tls_lines
      doc_cwd = nil # nil: the checkout
      dirs = { nil => step4[:dir] }
      previous = nil
      shell_vars = {}
      files = {}
      DocCommands.sh_blocks(part(4, 'TLS')).each do |block|
        DocCommands.logical_lines(block).each do |line|
          next if line.start_with?('#')

          line.sub(/\s+#.*\z/, '').split('&&').map(&:strip).each do |step|
            words = Shellwords.split(step)
            case words.first
            when 'cd'
              target = words[1] == '-' ? previous : words[1]
              previous = doc_cwd
              doc_cwd = target
              dirs[doc_cwd] ||= FileUtils.mkdir_p(File.join(@tmp, 'root', doc_cwd)).first
            when /\A(\w+)=(.*)\z/
              shell_vars[Regexp.last_match(1)] = Regexp.last_match(2).gsub('$PWD', dirs[doc_cwd])
            when 'bosh'
              next unless words[1] == 'int' && !words.include?('--vars-store')

              words = words.map { |w| w.gsub(/\$\{?(\w+)\}?/) { shell_vars.fetch(Regexp.last_match(1)) { fail!("#{step}: $#{Regexp.last_match(1)} is not set") } } }
              cut = words.index { |w| DocCommands::SHELL_OPERATORS.include?(w) } || words.size
              out = run_bosh(words[0...cut], dirs[doc_cwd]).out
              fail!("#{step}: printed nothing") if out.strip.empty?
              dest = if words[cut] == '|' && words[cut + 1..].include?('tee')
                       words[cut + 1..].drop_while { |w| w != 'tee' }.drop(1).reject { |w| w.start_with?('-') }.first
                     elsif words[cut] == '>'
                       File.join(doc_cwd || '.', words[cut + 1])
                     end
              files[dest] = out if dest
            end
          end
        end
      end
      files
    end

    def certificate(files, path)
      OpenSSL::X509::Certificate.new(files.fetch(path) { fail!("the guide installs no #{path}") })
    end

    def verify_chain(cert, ca, purpose, what)
      store = OpenSSL::X509::Store.new
      store.add_cert(ca)
      store.purpose = purpose
      return nil if store.verify(cert)

      "#{what}: #{store.error_string}"
    end

    def check_step4_tls_files
      @runner.check("#{DOC} §4: the TLS files it installs from creds.yml let libvirtd and the CPI verify each other") do
        files = run_tls_lines
        virsh = DocCommands.sh_blocks(part(4, 'TLS')).join.lines.grep(/virsh -c 'qemu\+tls:/).first or fail!('no virsh check with qemu+tls')
        pki = virsh[/pkipath=([^'&]+)/, 1] or fail!("no pkipath in #{virsh.strip}")
        host = virsh[%r{qemu\+tls://([^/]+)/}, 1]
        assert_equal(step4[:command].vars['libvirt_host'], host, 'the virsh check dials libvirt_host')
        client = CLIENT_FILES.transform_values { |f| File.join(pki, f) }
        problems = []
        server_cert = certificate(files, SERVER_FILES[:cert])
        client_cert = certificate(files, client[:cert])
        # The CPI checks libvirtd's certificate against its cacert.pem, and
        # libvirtd checks the CPI's against /etc/pki/CA/cacert.pem.
        problems << verify_chain(server_cert, certificate(files, client[:ca]), OpenSSL::X509::PURPOSE_SSL_SERVER, 'server certificate against the client CA')
        problems << verify_chain(client_cert, certificate(files, SERVER_FILES[:ca]), OpenSSL::X509::PURPOSE_SSL_CLIENT, 'client certificate against the server CA')
        problems << 'serverkey.pem does not belong to servercert.pem' unless server_cert.check_private_key(OpenSSL::PKey.read(files.fetch(SERVER_FILES[:key]) { fail!("no #{SERVER_FILES[:key]}") }))
        problems << 'clientkey.pem does not belong to clientcert.pem' unless client_cert.check_private_key(OpenSSL::PKey.read(files.fetch(client[:key]) { fail!("no #{client[:key]}") }))
        san = server_cert.extensions.find { |e| e.oid == 'subjectAltName' }&.value.to_s
        problems << "the server certificate is not issued for libvirt_host #{host} (SAN: #{san})" unless san.split(/,\s*/).include?("IP Address:#{host}")
        assert_no_problems(problems.compact, 'TLS files')
      end
    end

    def check_step4_ssh
      @runner.check("#{DOC} §4 SSH: the vars-store command with ssh.yml generates libvirt_ssh, with every variable given") do
        text = part(4, 'SSH')
        block = DocCommands.sh_blocks(text).join
        swap = block.match(/with (-o \S+) instead of (\S+)/) or fail!('§4 SSH does not say which ops file replaces tls.yml')
        extra = block[/^#\s*and ((?:(?:-v|--var-file) \S+\s*)+)/, 1] or fail!('§4 SSH does not say which flags to add')
        new_ops = Shellwords.split(swap[1]).last
        words = step4[:command].words.dup
        index = words.index { |w| File.basename(w) == swap[2] } or fail!("the §4 command has no #{swap[2]}")
        words[index] = new_ops
        words.insert(words.index('>') || words.size, *Shellwords.split(extra.sub(/:\s*\z/, '')))
        dir = checkout('ssh')
        keyscan = block.lines.grep(/ssh-keyscan/).first or fail!('§4 SSH does not show ssh-keyscan')
        # ssh-keyscan's output, for the host the guide scans.
        File.write(File.join(dir, keyscan[/>\s*(\S+)/, 1]), "#{keyscan[/(\d+\.\d+\.\d+\.\d+)/, 1]} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKey\n")
        run_bosh(words, dir)
        run_bosh(words + %w[--var-errs --var-errs-unused], dir)
        key = commands(text, 'int').find { |c| c.rest.include?('/libvirt_ssh/public_key') } or fail!('§4 SSH does not show the public key')
        public_key = run_bosh(key.words, dir).out
        assert(public_key.start_with?('ssh-rsa '), "libvirt_ssh.public_key is not an OpenSSH key: #{public_key[0, 40].inspect}")
      end
    end

    def check_step5_create_env
      @runner.check("#{DOC} §5: create-env's flags are §4's and find every variable in §4's creds.yml") do
        found = commands(section(5), 'create-env')
        assert_equal(1, found.size, '§5 create-env commands')
        create = found.first
        problems = []
        %i[target ops vars var_files vars_store].each do |field|
          problems << "#{field}: §5 has #{create[field].inspect}, §4 #{step4[:command][field].inspect}" unless create[field] == step4[:command][field]
        end
        assert_no_problems(problems, 'create-env and the vars-store command of §4 differ')
        # create-env needs network; bosh int with the same flags shows that
        # the manifest it deploys is complete and creds.yml needs nothing new.
        words = create.words.map { |w| w == 'create-env' ? 'int' : w }
        state = words.index('--state')
        words.slice!(state, 2) if state
        before = File.read(step4[:creds])
        run_bosh(words + %w[--var-errs --var-errs-unused], step4[:dir])
        assert(File.read(step4[:creds]) == before, 'bosh int with create-env\'s flags changed creds.yml: §4 did not generate everything')
      end
    end

    def check_step6_login
      @runner.check("#{DOC} §6: the login values come out of creds.yml") do
        found = commands(section(6), 'int')
        assert(found.size >= 2, "§6 shows #{found.size} bosh int commands, expected the CA and the admin password")
        found.each do |command|
          out = run_bosh(command.words, step4[:dir]).out
          assert(!out.strip.empty?, "#{command}: printed nothing")
        end
      end
    end

    def check_step7_cloud_config
      @runner.check("#{DOC} §7: update-cloud-config passes exactly the variables cloud-config.yml uses") do
        found = commands(section(7), 'update-cloud-config')
        assert_equal(1, found.size, '§7 update-cloud-config commands')
        command = found.first
        BoshCli.int!(command.target, vars: command.vars, var_files: command.var_files, var_errs: true,
                                     var_errs_unused: true, chdir: checkout('cloud-config'))
      end
    end

    def check_step8_cpi_config
      @runner.check("#{DOC} §8: cpi-config.yml with creds.yml and the guide's host-vars.yml; the same -l files as its header") do
        text = section(8)
        found = commands(text, 'update-cpi-config')
        assert_equal(1, found.size, '§8 update-cpi-config commands')
        command = found.first
        header = DocCommands.bosh_commands(DocCommands.header_comment(File.join(@repo, command.target)))
                            .find { |c| c.subcommand == 'update-cpi-config' } or fail!("#{command.target}'s header shows no update-cpi-config")
        assert_equal(header.vars_files, command.vars_files, "-l files of #{DOC} §8 and of #{command.target}'s header")
        examples = DocCommands.yaml_blocks(text)
        assert_equal(1, examples.size, '§8 yaml blocks (host-vars.yml)')
        host_vars = command.vars_files.find { |f| f != step4[:command].vars_store } or fail!('§8 passes no host vars file')
        File.write(File.join(step4[:dir], host_vars), examples.first)
        BoshCli.int!(command.target, vars_files: command.vars_files, var_errs: true, chdir: step4[:dir])
        # The guide names every variable bosh asks for.
        needed = BoshCli.int(command.target, var_errs: true, chdir: step4[:dir]).missing
        assert(!needed.empty?, "bosh int #{command.target} --var-errs listed no variables")
        unnamed = needed.reject { |v| text.include?("`#{v}`") }
        assert_no_problems(unnamed.map { |v| "#{v} is needed but §8 does not name it" }, '§8 variables')
      end
    end
  end
end
