"""What a person reads: Figures 2 and 3, the HTML report and the paper's Table 4 reproduction."""
