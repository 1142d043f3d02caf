# Applies every ops file in manifests/ to the fixture copy of bosh-deployment's
# bosh.yml with the real `bosh int --var-errs --var-errs-unused` and checks
# the results; interpolates the cloud-config and cpi-config examples with the
# variables their header commands pass and checks them against what the CPI
# accepts.
require 'yaml'
require 'tmpdir'
require_relative 'lib/manifests'
require_relative 'lib/cpi_schema'
require_relative 'lib/doc_commands'

module ReleaseTest
  class OpsFileTests
    include Assertions

    # Combinations an operator would use, in order. An ops file of manifests/
    # that no combination names is tried as cpi.yml + that file.
    COMBINATIONS = [
      %w[cpi.yml tls.yml],
      %w[cpi.yml tls.yml unix-socket.yml],
      %w[cpi.yml ssh.yml],
      %w[cpi.yml ssh.yml unix-socket.yml local-release.yml],
      %w[cpi.yml tcp.yml],
      %w[cpi.yml tcp.yml local-release.yml],
      %w[cpi.yml use-jammy.yml tls.yml],
    ].freeze

    VM_KEYS = %w[cpu cpus ram memory ephemeral_disk root_disk].freeze
    NETWORK_KEYS = %w[name bridge dev mode].freeze
    DISK_KEYS = %w[storage_pool format].freeze

    def initialize(repo, runner)
      @repo = repo
      @runner = runner
      @used_vars = []
    end

    def run
      ops_files = Dir[File.join(@repo, 'manifests', '*.yml')].select { |f| ops_file?(f) }.map { |f| File.basename(f) }.sort
      combos = COMBINATIONS.dup
      ops_files.each { |f| combos << ['cpi.yml', f].uniq unless combos.flatten.include?(f) }
      @runner.check('bosh CLI is present and runs') { puts "      #{BoshCli.path}: #{BoshCli.version}" }
      @runner.check('bosh-deployment fixture is present') { Manifests.fixture_dir }
      combos.each { |combo| check_combination(combo) }
      check_operator_vars_used
      check_cloud_config
      check_cpi_config
    end

    private

    def ops_file?(path)
      doc = Manifests.load_yaml(path)
      doc.is_a?(Array) && doc.all? { |op| op.is_a?(Hash) && op.key?('type') && op.key?('path') }
    end

    def check_combination(combo)
      @runner.check("bosh.yml -o #{combo.join(' -o ')}") do
        built = Manifests.build(combo.map { |f| File.join(@repo, 'manifests', f) })
        @used_vars.concat(built.used_vars)
        check_wiring(built.manifest, combo)
      end
    end

    def check_wiring(doc, combo)
      release = (doc['releases'] || []).find { |r| r['name'] == 'bosh-libvirt-cpi' }
      assert(release, 'no bosh-libvirt-cpi release')
      if combo.include?('local-release.yml')
        assert(release['url'].start_with?('file://') && !release.key?('sha1'), 'local-release.yml: expected a file:// url and no sha1')
      end
      assert_equal({ 'name' => 'libvirt_cpi', 'release' => 'bosh-libvirt-cpi' }, doc.dig('cloud_provider', 'template'), 'cloud_provider.template')
      group = Manifests.instance_group(doc, 'bosh')
      assert(group['jobs'].any? { |j| j['name'] == 'libvirt_cpi' && j['release'] == 'bosh-libvirt-cpi' }, 'libvirt_cpi job missing from the bosh instance group')
      assert_equal('libvirt_cpi', group.dig('properties', 'director', 'cpi_job'), 'director.cpi_job')
      pool = doc['resource_pools'].find { |r| r['name'] == 'vms' }
      assert(pool.dig('stemcell', 'url').to_s.include?('openstack-kvm'), 'stemcell must be an openstack-kvm one')
      problems = (pool['cloud_properties'].keys - VM_KEYS).map { |k| "resource pool cloud_properties: unknown key #{k}" }
      subnet_cp = doc.dig('networks', 0, 'subnets', 0, 'cloud_properties') || {}
      problems += (subnet_cp.keys - NETWORK_KEYS).map { |k| "subnet cloud_properties: unknown key #{k}" }
      # Both sides' libvirt sections must be something the CPI config accepts.
      {
        'cloud_provider.properties.libvirt' => doc.dig('cloud_provider', 'properties', 'libvirt'),
        'bosh properties libvirt' => Manifests.director_job_properties(doc, 'libvirt_cpi')['libvirt'],
      }.each do |where, section|
        problems << "#{where} is missing" unless section
        next unless section

        problems += CpiSchema.problems(section, { type: :object, keys: CpiSchema::LIBVIRT_KEYS }, where)
      end
      director = Manifests.director_job_properties(doc, 'libvirt_cpi')['libvirt']
      problems << 'the director side has no transport to the host (tcp/tls/ssh or a uri)' unless director.nil? || director['uri'] || %w[tcp tls ssh].include?(director['transport'])
      problems << 'create-env side: agent.mbus missing' unless doc.dig('cloud_provider', 'properties', 'agent', 'mbus')
      assert_no_problems(problems, 'manifest wiring')
    end

    def check_operator_vars_used
      @runner.check('every libvirt variable the test supplies is used by some ops file') do
        fail!('no combination was built by bosh int (see above)') if @used_vars.empty?
        unused = Manifests::OPERATOR_VARS.keys.grep(/libvirt/) - @used_vars
        assert_no_problems(unused.map { |v| "#{v} is supplied but never used (typo in an ops file?)" }, 'variables')
      end
    end

    def check_cloud_config
      @runner.check('manifests/cloud-config.yml') do
        # The command of its header, as bosh int: the -v flags it shows must
        # be exactly the variables the file uses.
        file = File.join(@repo, 'manifests', 'cloud-config.yml')
        command = header_command(file, 'update-cloud-config')
        doc = BoshCli.int!(file, vars: command.vars, var_errs: true, var_errs_unused: true)
        problems = []
        %w[azs vm_types disk_types networks compilation].each { |k| problems << "#{k} is missing" unless doc[k] }
        az_names = (doc['azs'] || []).map { |a| a['name'] }
        vm_types = (doc['vm_types'] || []).map { |v| v['name'] }
        (doc['vm_types'] || []).each do |vm|
          cp = vm['cloud_properties'] || {}
          problems += (cp.keys - VM_KEYS).map { |k| "vm_type #{vm['name']}: unknown cloud_properties key #{k}" }
          problems << "vm_type #{vm['name']}: needs cpu, ram and ephemeral_disk" unless (%w[cpu ram ephemeral_disk] - cp.keys).empty?
          (cp.keys & %w[cpu cpus ram memory ephemeral_disk]).each do |k|
            problems << "vm_type #{vm['name']}: #{k} must be a positive integer" unless cp[k].is_a?(Integer) && cp[k].positive?
          end
        end
        (doc['disk_types'] || []).each do |disk|
          problems << "disk_type #{disk['name']}: disk_size must be an integer" unless disk['disk_size'].is_a?(Integer)
          problems += ((disk['cloud_properties'] || {}).keys - DISK_KEYS).map { |k| "disk_type #{disk['name']}: unknown cloud_properties key #{k}" }
        end
        (doc['networks'] || []).each do |net|
          (net['subnets'] || []).each do |subnet|
            cp = subnet['cloud_properties'] || {}
            problems += (cp.keys - NETWORK_KEYS).map { |k| "network #{net['name']}: unknown cloud_properties key #{k}" }
            problems += ((subnet['azs'] || []) - az_names).map { |az| "network #{net['name']}: unknown az #{az}" }
          end
        end
        compilation = doc['compilation'] || {}
        problems << 'compilation.vm_type is not a vm_type' unless vm_types.include?(compilation['vm_type'])
        problems << 'compilation.az is not an az' unless az_names.include?(compilation['az'])
        problems << 'compilation.network is not a network' unless (doc['networks'] || []).any? { |n| n['name'] == compilation['network'] }
        assert_no_problems(problems, 'cloud-config.yml')
      end
    end

    # The first `bosh SUBCOMMAND FILE ...` of FILE's header comment.
    def header_command(file, subcommand)
      rel = file.delete_prefix("#{@repo}/")
      command = DocCommands.bosh_commands(DocCommands.header_comment(file)).find { |c| c.subcommand == subcommand }
      fail!("the header of #{rel} shows no `bosh #{subcommand}` command") unless command
      assert_equal(rel, command.target, "the header's bosh #{subcommand} target")
      command
    end

    # host-vars.yml for cpi-config.yml, as docs/deploying.md step 8 describes it.
    HOST_VARS = {
      'rack1_host' => '10.0.1.1', 'rack2_host' => '10.0.2.1', 'lab_host' => '10.0.3.1',
      'lab_known_hosts' => "10.0.3.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTestsOnly0000000000000000000\n",
      'lab_ssh' => { 'private_key' => Manifests.fake_pem('OPENSSH PRIVATE KEY', 'lab') },
    }.freeze

    def check_cpi_config
      @runner.check('manifests/cpi-config.yml') do
        # The command of its header, as bosh int with --var-errs: creds.yml is
        # the vars store of cpi.yml + tls.yml (libvirt_client_tls), host-vars.yml
        # holds the hosts' values.
        file = File.join(@repo, 'manifests', 'cpi-config.yml')
        command = header_command(file, 'update-cpi-config')
        creds = Manifests.build(%w[cpi.yml tls.yml].map { |f| File.join(@repo, 'manifests', f) }).store
        doc = Dir.mktmpdir('cpi-config') do |tmp|
          known = { 'creds.yml' => creds, 'host-vars.yml' => HOST_VARS }
          unknown = command.vars_files - known.keys
          fail!("the header passes #{unknown.join(', ')}; expected creds.yml and host-vars.yml") unless unknown.empty?
          known.each { |name, values| File.write(File.join(tmp, name), YAML.dump(values)) }
          BoshCli.int!(file, vars_files: command.vars_files.map { |f| File.join(tmp, f) }, vars: command.vars, var_errs: true)
        end
        cpis = doc['cpis']
        assert(cpis.is_a?(Array) && cpis.size >= 2, 'cpis must list several hosts')
        problems = []
        names = cpis.map { |c| c['name'] }
        problems << 'cpi names must be unique' unless names.uniq.size == names.size
        cpis.each do |cpi|
          problems << "#{cpi['name']}: type must be libvirt (the director then runs /var/vcap/jobs/libvirt_cpi/bin/cpi)" unless cpi['type'] == 'libvirt'
          props = cpi['properties'] || {}
          problems += CpiSchema.problems(props, { type: :object, keys: CpiSchema::LIBVIRT_KEYS }, cpi['name'])
        end
        assert_no_problems(problems, 'cpi-config.yml')
      end
    end
  end
end
