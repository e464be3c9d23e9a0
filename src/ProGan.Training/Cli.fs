module ProGan.Training.Cli
