# Perl under hakmem (tests/suites/programs.sh): hashes, strings grown by appending (realloc),
# split/join and regex substitution over large buffers; prints only what it computed.
use strict;
use warnings;
my (%h, $s);
$s = "";
for my $i (1 .. 100000) {
    $h{"key$i"} = "v" x ($i % 200);
    $s .= chr(65 + $i % 26);
}
my @keys = sort keys %h;
my $total = 0;
$total += length($h{$_}) for @keys;
for my $i (1 .. 100000) { delete $h{"key$i"} if $i % 3; }
my @parts = split /,/, join(",", map { $_ * 2 } 1 .. 100000);
(my $t = $s) =~ s/ABC/xyz/g;
my %count;
$count{substr($_, 0, 4)}++ for @keys;
print scalar(@keys), " $total ", scalar(keys %h), " ", scalar(@parts), " ", length($t), "\n";
print join(",", map { "$_=$count{$_}" } sort keys %count), "\n";
print substr(reverse($t), 0, 40), "\n";
