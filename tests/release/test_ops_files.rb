# Applies every ops file in manifests/ to the fixture copy of bosh-deployment's
# bosh.yml (as `bosh int --var-errs` would) and checks the results; checks the
# cloud-config and cpi-config examples against what the CPI accepts.
require 'yaml'
require_relative 'lib/manifests'
require_relative 'lib/cpi_schema'

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
      check_engine
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
        doc = Manifests.apply(combo.map { |f| File.join(@repo, 'manifests', f) })
        undefined = Manifests.undefined_variables(doc)
        assert_no_problems(undefined.map { |v| "((#{v})) is neither in variables: nor supplied by the operator" }, 'variables')
        @used_vars.concat(GoPatch.variables_in(doc))
        names = (doc['variables'] || []).map { |v| v['name'] }
        dupes = names.tally.select { |_, c| c > 1 }.keys
        assert_no_problems(dupes.map { |d| "variable #{d} is declared twice" }, 'variables')
        check_wiring(Manifests.interpolate(doc), combo)
      end
    end

    # What a working create-env needs from the result.
    # The go-patch subset itself, on a small document: what must apply and what must not.
    def check_engine
      base = { 'a' => { 'b' => 1 }, 'list' => [{ 'name' => 'x', 'v' => 1 }, { 'name' => 'y', 'v' => 2 }] }
      good = [
        [{ 'type' => 'replace', 'path' => '/a/b', 'value' => 2 }, ->(d) { d['a']['b'] == 2 }],
        [{ 'type' => 'replace', 'path' => '/a/c?/d', 'value' => 3 }, ->(d) { d['a']['c'] == { 'd' => 3 } }],
        [{ 'type' => 'replace', 'path' => '/list/-', 'value' => { 'name' => 'z' } }, ->(d) { d['list'].last == { 'name' => 'z' } }],
        [{ 'type' => 'replace', 'path' => '/list/name=y/v', 'value' => 5 }, ->(d) { d['list'][1]['v'] == 5 }],
        [{ 'type' => 'replace', 'path' => '/list/name=q?/v', 'value' => 6 }, ->(d) { d['list'].last == { 'name' => 'q', 'v' => 6 } }],
        [{ 'type' => 'replace', 'path' => '/list/0/v', 'value' => 7 }, ->(d) { d['list'][0]['v'] == 7 }],
        [{ 'type' => 'replace', 'path' => '/new?/-', 'value' => 1 }, ->(d) { d['new'] == [1] }],
        [{ 'type' => 'remove', 'path' => '/list/name=x' }, ->(d) { d['list'].map { |i| i['name'] } == ['y'] }],
        [{ 'type' => 'remove', 'path' => '/a/nope?' }, ->(d) { d['a'] == { 'b' => 1 } }],
        [{ 'type' => 'remove', 'path' => '/nope?/deeper' }, ->(d) { d == base }],
      ]
      bad = [
        { 'type' => 'replace', 'path' => '/a/c/d', 'value' => 1 },
        { 'type' => 'replace', 'path' => '/a/c', 'value' => 1 },
        { 'type' => 'replace', 'path' => '/list/name=q/v', 'value' => 1 },
        { 'type' => 'replace', 'path' => '/list/5', 'value' => 1 },
        { 'type' => 'replace', 'path' => '/a/-', 'value' => 1 },
        { 'type' => 'remove', 'path' => '/a/nope' },
        { 'type' => 'remove', 'path' => '/list/name=q' },
        { 'type' => 'replace', 'path' => 'a/b', 'value' => 1 },
        { 'type' => 'replace', 'path' => '/a/b' },
        { 'type' => 'move', 'path' => '/a/b', 'value' => 1 },
      ]
      @runner.check('go-patch subset: operations that must apply') do
        good.each do |op, ok|
          result = GoPatch.apply_all(base, [op])
          assert(ok.call(result), "#{op.inspect} gave #{result.inspect}")
        end
      end
      @runner.check('go-patch subset: operations that must be rejected') do
        applied = bad.reject do |op|
          GoPatch.apply_all(base, [op])
          false
        rescue PatchError
          true
        end
        assert_no_problems(applied.map(&:inspect), 'applied although invalid')
      end
      @runner.check('variable finder sees ((name)), ((name.field)) and ((!name))') do
        doc = { 'a' => '((one))', 'b' => ['x ((two.ca)) y'], 'c' => { '((three))' => '((!four))' } }
        assert_equal(%w[one two three four].sort, GoPatch.variables_in(doc).sort, 'variables')
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
        unused = Manifests::OPERATOR_VARS.keys.grep(/libvirt/) - @used_vars
        assert_no_problems(unused.map { |v| "#{v} is supplied but never used (typo in an ops file?)" }, 'variables')
      end
    end

    def check_cloud_config
      @runner.check('manifests/cloud-config.yml') do
        doc = Manifests.load_yaml(File.join(@repo, 'manifests', 'cloud-config.yml'))
        undefined = GoPatch.variables_in(doc) - Manifests::OPERATOR_VARS.keys
        problems = undefined.map { |v| "((#{v})) has no value" }
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

    def stand_in(node)
      case node
      when Hash then node.transform_values { |v| stand_in(v) }
      when Array then node.map { |v| stand_in(v) }
      when String
        node.gsub(GoPatch::VARIABLE) do
          name = Regexp.last_match(1)
          name.include?('.') ? Manifests.fake_pem('CERTIFICATE', name) : "stand-in-#{name}"
        end
      else node
      end
    end

    def check_cpi_config
      @runner.check('manifests/cpi-config.yml') do
        doc = Manifests.load_yaml(File.join(@repo, 'manifests', 'cpi-config.yml'))
        cpis = doc['cpis']
        assert(cpis.is_a?(Array) && cpis.size >= 2, 'cpis must list several hosts')
        problems = []
        names = cpis.map { |c| c['name'] }
        problems << 'cpi names must be unique' unless names.uniq.size == names.size
        cpis.each do |cpi|
          problems << "#{cpi['name']}: type must be libvirt (the director then runs /var/vcap/jobs/libvirt_cpi/bin/cpi)" unless cpi['type'] == 'libvirt'
          props = cpi['properties'] || {}
          # Stand-ins: ((name.field)) is key material, ((name)) a plain value.
          resolved = stand_in(props)
          problems += CpiSchema.problems(resolved, { type: :object, keys: CpiSchema::LIBVIRT_KEYS }, cpi['name'])
        end
        assert_no_problems(problems, 'cpi-config.yml')
      end
    end
  end
end
