# bash completion for kuractl(8): commands, options, and secret names from a running kurad.
# Installed as bash-completion's completions/kuractl; also works sourced on its own.

# _kuractl_names PREFIX: the secret names under PREFIX that the kurad serving the state
# directory lists, asked only when that kurad's note of its run directory (STATE_DIR/kurad.run,
# root's) names one whose admin.sock this user may connect to, and never for longer than two
# seconds. So kuractl's offline path (which opens the store) is not taken: not for a state no
# kurad serves, nor for a --run-dir of another kurad's. Each list is recorded in kurad's audit
# log, like any other.
_kuractl_names() {
	local state=/var/lib/kura run= note= i w
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--run-dir) run=${COMP_WORDS[i + 1]} ;;
		--run-dir=*) run=${w#*=} ;;
		--state-dir) state=${COMP_WORDS[i + 1]} ;;
		--state-dir=*) state=${w#*=} ;;
		esac
	done
	[[ -r $state/kurad.run ]] && read -r note <"$state/kurad.run" 2>/dev/null || return 0
	[[ $note == /* && (-z $run || $run == "$note") ]] || return 0
	[[ -S $note/admin.sock && -w $note/admin.sock ]] || return 0
	# The listing is a table: a header, then one name a line, first column. Names are
	# [A-Za-z0-9._-] segments joined by '/'; anything else is not taken.
	timeout -k 1 2 kuractl --state-dir "$state" --run-dir "$note" secret list -- "$1" \
		2>/dev/null </dev/null | awk 'NR > 1 && $1 ~ /^[A-Za-z0-9._\/-]+$/ { print $1 }'
}

_kuractl() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	local global='--state-dir --key-file --passphrase-file --json --run-dir --offline --help --version'
	local with_arg='--state-dir|--key-file|--passphrase-file|--run-dir|--file|--generate|--version|--to|--tpm2-device|--new-key-file|--new-passphrase-file|--max-value-size|--audit-key-out|--image|--digest|--name|--label|--image-label|--runtime|--uid|--since|--until|--secret|--container|--event|--dir|--key|--checkpoint|--checkpoints|--before|--audit-key|--config|--output|--prefix'
	COMPREPLY=()

	# The value of an option that takes one.
	case $prev in
	--state-dir | --run-dir | --dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--key-file | --passphrase-file | --file | --new-key-file | --new-passphrase-file | --audit-key-out | --key | --checkpoints | --audit-key | --config | --output)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--secret)
		COMPREPLY=($(compgen -W "$(_kuractl_names "$cur")" -- "$cur"))
		return
		;;
	--runtime)
		COMPREPLY=($(compgen -W 'docker podman containerd crio' -- "$cur"))
		return
		;;
	--event)
		COMPREPLY=($(compgen -W 'fetch list whoami watch request whois status secret-put
			secret-rotate secret-rollback secret-destroy secret-get secret-show secret-list
			grant revoke grants key-rotate key-rekey key-status config start stop reload
			sink-failure sink-recovered sink-drop audit-recovered audit-key-evolve
			audit-init audit-archive' -- "$cur"))
		return
		;;
	--generate | --version | --to | --tpm2-device | --max-value-size | --image | --digest | --name | --label | --image-label | --uid | --since | --until | --before | --prefix | --container | --checkpoint)
		return # a value of the user's own (a number, an ID, a time): nothing to offer
		;;
	esac

	# The command and its subcommand: the first words that are not options or their values.
	local i w cmd= sub= nargs=0 skip=
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ -n $skip ]]; then
			skip=
			continue
		fi
		case $w in
		--*=*) ;;
		-*) [[ $w == @($with_arg) ]] && skip=1 ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$w
			elif [[ -z $sub && $cmd == @(secret|key|audit) && $w == @(put|rotate|get|list|show|rollback|destroy|import|export|rekey|status|stats|verify|init|archive) ]]; then
				sub=$w
			else
				((nargs++))
			fi
			;;
		esac
	done

	local opts= words=
	case $cmd in
	'')
		words='init secret key config grant revoke grants whois audit doctor status metrics backup restore'
		opts=$global
		;;
	init) opts='--key-file --passphrase-file --tpm2 --tpm2-device --max-value-size --audit-key-out' ;;
	secret)
		case $sub in
		'') words='put rotate get list show rollback destroy import export' ;;
		import)
			opts='--dir --prefix'
			COMPREPLY=($(compgen -f -- "$cur"))
			;;
		export) opts='--values --output --dir' ;;
		put) opts='--file --generate --printable --allow-empty' ;;
		rotate)
			opts='--file --generate --printable --allow-empty'
			((nargs == 0)) && words=$(_kuractl_names "$cur")
			;;
		get | destroy)
			opts='--version'
			((nargs == 0)) && words=$(_kuractl_names "$cur")
			;;
		rollback)
			opts='--to'
			((nargs == 0)) && words=$(_kuractl_names "$cur")
			;;
		show | list) ((nargs == 0)) && words=$(_kuractl_names "$cur") ;;
		esac
		;;
	key)
		case $sub in
		'') words='rotate rekey status' ;;
		rekey) opts='--new-key-file --new-passphrase-file --tpm2 --tpm2-device' ;;
		esac
		;;
	config) opts='--max-value-size' ;;
	grant | revoke)
		opts='--image --digest --name --label --image-label --runtime --uid --host'
		((nargs == 0)) && words=$(_kuractl_names "$cur")
		;;
	whois) opts='--run-dir' ;;
	doctor) opts='--runtime --config --audit-key' ;;
	status | metrics) opts='--run-dir' ;;
	backup)
		opts='--with-key'
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	restore)
		opts='--force'
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	audit)
		case $sub in
		'')
			words='stats verify init archive'
			opts='--since --until --secret --container --image --event --denied --follow --dir'
			;;
		stats) opts='--since --until --secret --container --image --event --denied --dir' ;;
		verify)
			opts='--key --checkpoint --checkpoints --dir'
			COMPREPLY=($(compgen -d -- "$cur"))
			;;
		init) opts='--audit-key-out' ;;
		archive)
			opts='--before --key --dir'
			COMPREPLY=($(compgen -d -- "$cur"))
			;;
		esac
		;;
	esac
	[[ -n $cmd ]] && opts=$(printf '%s\n' $opts $global | sort -u)
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY+=($(compgen -W "$words" -- "$cur"))
	fi
}

complete -F _kuractl kuractl
