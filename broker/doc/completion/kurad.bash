# bash completion for kurad(8)'s options. Installed as bash-completion's completions/kurad.
_kurad() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	case $prev in
	--state-dir | --run-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--config | --key-file | --passphrase-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--runtime)
		# NAME=unix:PATH: '=' and ':' break words in bash, so offer the names only
		[[ $cur == *[=:]* ]] || COMPREPLY=($(compgen -W 'docker= podman=' -- "$cur"))
		compopt -o nospace 2>/dev/null
		return
		;;
	esac
	COMPREPLY=($(compgen -W '--state-dir --run-dir --runtime --key-file --passphrase-file
		--config --syslog --no-sandbox --help --version' -- "$cur"))
}

complete -F _kurad kurad
