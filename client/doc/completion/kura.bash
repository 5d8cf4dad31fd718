# bash completion for kura(1): commands, options, and after '--' the command to run.
# Installed as bash-completion's completions/kura.
_kura() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	local i w cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--)
			# CMD and its arguments: a command first, then files
			if ((i == COMP_CWORD - 1)); then
				COMPREPLY=($(compgen -c -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi
			return
			;;
		--socket | --timeout | --dir | --uid | --gid | --mode | --only | --on-change) ((i++)) ;;
		-*) ;;
		*) [[ -z $cmd ]] && cmd=$w ;;
		esac
	done
	case $prev in
	--socket)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--on-change)
		# signal:SIG, restart or exec:CMD2 (':' breaks words in bash: offer the forms)
		[[ $cur == *:* ]] || COMPREPLY=($(compgen -W 'signal:HUP signal:TERM signal:USR1
			signal:USR2 restart exec:' -- "$cur"))
		return
		;;
	--timeout | --uid | --gid | --mode | --only) return ;;
	esac
	local global='--socket --timeout --help --version'
	local write='--dir --uid --gid --mode --only --allow-partial'
	case $cmd in
	'')
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global" -- "$cur"))
		else
			COMPREPLY=($(compgen -W 'run fetch whoami ls' -- "$cur"))
		fi
		;;
	run) COMPREPLY=($(compgen -W "$write --watch --on-change --" -- "$cur")) ;;
	fetch) COMPREPLY=($(compgen -W "$write" -- "$cur")) ;;
	esac
}

complete -F _kura kura
